// Trace I/O: .jsonl (proto3 JSON lines) and .pb (length-delimited protobuf) EventBatch streams.
export { TraceError, FieldError, describeLocation, type TraceLocation } from './errors.js';
export { traceFormatOf, type TraceFormat } from './format.js';
export { readTrace, TraceReader, type TraceReadOptions, type TraceReadStats, type DecodedBatch } from './reader.js';
export { openTraceWriter, writeTrace, TraceWriter, type TraceWriteOptions } from './writer.js';
export { validateBatch, validateEvent, MAX_DURATION_NS } from '../core/validate.js';
export {
  batchFromJson, batchToJson, episodeToJson, findingToJson, episodeFromJson, findingFromJson, messageObject,
} from './json.js';
