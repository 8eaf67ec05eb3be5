// Streaming trace writers: `.jsonl` (canonical proto3 JSON, one EventBatch per line: lowerCamelCase,
// 64-bit as strings, enums by name) or `.pb` (length-delimited EventBatch). Batches are validated
// before they are written (validate.ts), so a producer bug fails here, not in a later reader.
// write() resolves once the bytes are buffered below the stream's high-water mark (backpressure).
import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import type { Writable } from 'node:stream';
import { v1, type EventBatch } from '../core/model.js';
import { FieldError, TraceError } from './errors.js';
import { traceFormatOf, type TraceFormat } from './format.js';
import { batchToJson } from './json.js';
import { validateBatch } from '../core/validate.js';
import type { revokescope } from '../../gen/proto.js';

export interface TraceWriteOptions {
  format?: TraceFormat;
  /** Check each batch first (default true). */
  validate?: boolean;
  /** Where `-` writes to (default process.stdout). */
  stdout?: Writable;
}

const FLUSH_BYTES = 256 << 10;

export class TraceWriter {
  readonly format: TraceFormat;
  batches = 0;
  events = 0;
  bytes = 0;
  private readonly out: Writable;
  private readonly ownsStream: boolean;
  private pending: (Buffer | Uint8Array)[] = [];
  private pendingBytes = 0;
  private failure: Error | undefined;

  constructor(readonly file: string, private readonly opts: TraceWriteOptions = {}) {
    this.format = opts.format ?? traceFormatOf(file);
    if (file === '-') {
      this.out = opts.stdout ?? process.stdout;
      this.ownsStream = false;
    } else {
      this.out = createWriteStream(file);
      this.ownsStream = true;
    }
    this.out.on('error', (e) => { this.failure ??= e; });
  }

  async write(batch: EventBatch): Promise<void> {
    if (this.failure) throw this.wrap(this.failure);
    if (this.opts.validate !== false) {
      try {
        validateBatch(batch);
      } catch (e) {
        if (e instanceof FieldError) throw new TraceError({ file: this.file }, `refusing to write batch ${this.batches + 1}: ${e.message}`);
        throw e;
      }
    }
    const bytes = this.format === 'jsonl'
      ? Buffer.from(`${JSON.stringify(batchToJson(batch))}\n`)
      : v1.EventBatch.encodeDelimited(batch as revokescope.v1.IEventBatch).finish();
    this.pending.push(bytes);
    this.pendingBytes += bytes.length;
    this.batches++;
    this.events += batch.events?.length ?? 0;
    if (this.pendingBytes >= FLUSH_BYTES) await this.flush();
  }

  private async flush(): Promise<void> {
    if (this.pending.length === 0) return;
    const chunk = this.pending.length === 1 ? this.pending[0]! : Buffer.concat(this.pending);
    this.pending = [];
    this.bytes += this.pendingBytes;
    this.pendingBytes = 0;
    try {
      if (!this.out.write(chunk)) await once(this.out, 'drain'); // once() rejects on 'error'
    } catch (e) {
      throw this.wrap(e as Error);
    }
    if (this.failure) throw this.wrap(this.failure);
  }

  /** Flushes and closes the file (stdout is flushed, not closed). */
  async close(): Promise<void> {
    await this.flush();
    if (this.failure) throw this.wrap(this.failure);
    if (this.ownsStream) {
      this.out.end();
      try {
        if (!this.out.writableFinished) await once(this.out, 'finish');
      } catch (e) {
        throw this.wrap(e as Error);
      }
    }
    if (this.failure) throw this.wrap(this.failure);
  }

  private wrap(e: Error): TraceError {
    return new TraceError({ file: this.file }, `cannot write: ${e.message}`);
  }
}

export function openTraceWriter(file: string, opts: TraceWriteOptions = {}): TraceWriter {
  return new TraceWriter(file, opts);
}

/** Writes all batches and closes the file. */
export async function writeTrace(file: string, batches: Iterable<EventBatch> | AsyncIterable<EventBatch>,
  opts: TraceWriteOptions = {}): Promise<TraceWriter> {
  const w = new TraceWriter(file, opts);
  for await (const b of batches) await w.write(b);
  await w.close();
  return w;
}
