// Trace file formats by name: `.jsonl` (also `.ndjson`, and `-` for stdin/stdout) is one proto3 JSON
// EventBatch per line; `.pb` (also `.bin`) is length-delimited binary EventBatches
// (varint length + message, as protobufjs encodeDelimited / Java writeDelimitedTo write them).
import { TraceError } from './errors.js';

export type TraceFormat = 'jsonl' | 'pb';

export function traceFormatOf(path: string): TraceFormat {
  if (path === '-') return 'jsonl';
  const lower = path.toLowerCase();
  if (lower.endsWith('.jsonl') || lower.endsWith('.ndjson')) return 'jsonl';
  if (lower.endsWith('.pb') || lower.endsWith('.bin')) return 'pb';
  throw new TraceError({ file: path }, 'unknown trace format: name it .jsonl (proto3 JSON lines) or .pb (length-delimited protobuf)');
}
