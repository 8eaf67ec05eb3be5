// Streaming trace readers: an async iterable of EventBatch messages with bounded memory. `.jsonl` is
// read line by line, `.pb` in chunks (one record at a time is decoded). Every batch is checked at this
// boundary (json.ts for proto3 JSON, validate.ts for the facts downstream relies on). A bad line or
// record throws a TraceError naming the file and line (or record and byte offset); with `lenient` it is
// skipped and counted in `stats.skipped` instead.
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { v1 } from '../core/model.js';
import type { revokescope } from '../../gen/proto.js';
import { TraceError, FieldError, type TraceLocation } from './errors.js';
import { traceFormatOf, type TraceFormat } from './format.js';
import { batchFromJson } from './json.js';
import { validateBatch } from '../core/validate.js';
import { BatchScan, WireError } from '../core/wire.js';

export type DecodedBatch = revokescope.v1.EventBatch;

export interface TraceReadOptions {
  /** Skip and count bad lines/records instead of failing on the first one. */
  lenient?: boolean;
  /** Overrides the format implied by the file name. */
  format?: TraceFormat;
  /** Where `-` reads from (default process.stdin). */
  stdin?: Readable;
  /** Called for every skipped line/record in lenient mode. */
  onSkip?: (err: TraceError) => void;
  /** Largest .pb record accepted; a bigger length prefix is corruption. Default 64 MiB. */
  maxRecordBytes?: number;
  /** .pb read chunk size. Default 1 MiB. */
  chunkBytes?: number;
}

export interface TraceReadStats {
  /** Good batches yielded. */
  batches: number;
  events: number;
  /** Bad lines (.jsonl) or records (.pb) skipped in lenient mode. */
  skipped: number;
  /** The first few skip reasons (at most 10), for a report. */
  skipReasons: string[];
  /** .pb, lenient: the framing itself was broken, so the rest of the file could not be read. */
  truncated: boolean;
}

const MAX_REASONS = 10;

export class TraceReader implements AsyncIterable<DecodedBatch> {
  readonly format: TraceFormat;
  readonly stats: TraceReadStats = { batches: 0, events: 0, skipped: 0, skipReasons: [], truncated: false };

  constructor(readonly file: string, private readonly opts: TraceReadOptions = {}) {
    this.format = opts.format ?? traceFormatOf(file);
  }

  [Symbol.asyncIterator](): AsyncIterator<DecodedBatch> {
    return (this.format === 'jsonl' ? this.jsonl() : this.pb())[Symbol.asyncIterator]();
  }

  private input(): Readable {
    if (this.file === '-') return this.opts.stdin ?? process.stdin;
    return createReadStream(this.file, this.format === 'pb' ? { highWaterMark: this.opts.chunkBytes ?? 1 << 20 } : {});
  }

  /** Throws in strict mode, counts in lenient mode. */
  private bad(where: TraceLocation, reason: string): void {
    const err = new TraceError(where, reason);
    if (!this.opts.lenient) throw err;
    this.stats.skipped++;
    if (this.stats.skipReasons.length < MAX_REASONS) this.stats.skipReasons.push(err.message);
    this.opts.onSkip?.(err);
  }

  private accept(batch: DecodedBatch): DecodedBatch {
    this.stats.batches++;
    this.stats.events += batch.events.length;
    return batch;
  }

  private openError(e: unknown): TraceError {
    const code = (e as NodeJS.ErrnoException).code;
    return new TraceError({ file: this.file }, `cannot read: ${code === 'ENOENT' ? 'no such file' : (e as Error).message}`);
  }

  private async *jsonl(): AsyncGenerator<DecodedBatch> {
    const input = this.input();
    const lines = createInterface({ input, crlfDelay: Infinity });
    let line = 0;
    try {
      for await (let text of lines) {
        line++;
        if (line === 1 && text.charCodeAt(0) === 0xfeff) text = text.slice(1); // BOM
        if (text.trim() === '') continue;
        let json: unknown;
        try {
          json = JSON.parse(text);
        } catch (e) {
          this.bad({ file: this.file, line }, `bad JSON: ${(e as Error).message}`);
          continue;
        }
        let batch: DecodedBatch;
        try {
          batch = batchFromJson(json);
          validateBatch(batch);
        } catch (e) {
          if (!(e instanceof FieldError)) throw e;
          this.bad({ file: this.file, line }, e.message);
          continue;
        }
        yield this.accept(batch);
      }
    } catch (e) {
      if (e instanceof TraceError) throw e;
      throw this.openError(e);
    } finally {
      lines.close();
      if (this.file !== '-') input.destroy();
    }
  }

  /** .pb records as checked wire scans (the one reader every path shares: services/core/wire.ts). The scan is reused:
   * read it before taking the next. analyze ingests these directly (Correlator.ingestScan). */
  async *scans(): AsyncGenerator<BatchScan> {
    if (this.format !== 'pb') throw new Error('TraceReader.scans(): only for .pb traces');
    const scan = new BatchScan();
    for await (const r of this.records()) {
      if (!this.check(scan, r)) continue;
      this.stats.batches++;
      this.stats.events += scan.count;
      yield scan;
    }
  }

  private async *pb(): AsyncGenerator<DecodedBatch> {
    const scan = new BatchScan();
    for await (const r of this.records()) {
      // The wire reader decides what is a batch; protobufjs only builds the objects of bytes it accepted.
      if (this.check(scan, r)) yield this.accept(v1.EventBatch.decode(r.body));
    }
  }

  private check(scan: BatchScan, r: { body: Uint8Array; record: number; offset: number }): boolean {
    try {
      scan.read(r.body);
      return true;
    } catch (e) {
      if (!(e instanceof FieldError) && !(e instanceof WireError)) throw e;
      this.bad({ file: this.file, record: r.record, offset: r.offset }, e instanceof WireError ? `bad protobuf: ${e.message}` : e.message);
      return false;
    }
  }

  /** The length-delimited records of a .pb file, each with its 1-based index and the byte offset of its prefix. */
  private async *records(): AsyncGenerator<{ body: Uint8Array; record: number; offset: number }> {
    const maxRecord = this.opts.maxRecordBytes ?? 64 << 20;
    const input = this.input();
    let buf: Buffer = Buffer.alloc(0);
    let pos = 0; // read position in buf
    let base = 0; // file offset of buf[0]
    let record = 0;
    let eof = false;
    const chunks = input[Symbol.asyncIterator]();
    const more = async (): Promise<boolean> => {
      if (eof) return false;
      let next: IteratorResult<Buffer>;
      try {
        next = await chunks.next();
      } catch (e) {
        throw this.openError(e);
      }
      if (next.done) { eof = true; return false; }
      const rest = buf.subarray(pos);
      base += pos;
      buf = rest.length ? Buffer.concat([rest, next.value]) : next.value;
      pos = 0;
      return true;
    };
    try {
      for (;;) {
        // varint length prefix (at most 10 bytes)
        let len = 0;
        let shift = 0;
        let off = 0; // bytes of the prefix read so far, relative to pos (more() moves pos)
        let complete = false;
        for (;;) {
          if (pos + off >= buf.length) {
            if (await more()) continue;
            break;
          }
          const b = buf[pos + off]!;
          off++;
          len += (b & 0x7f) * 2 ** shift;
          shift += 7;
          if (b < 0x80) { complete = true; break; }
          if (shift >= 70) break;
        }
        const start = base + pos;
        if (!complete) {
          if (off === 0 && eof) return; // clean end of file
          record++;
          const reason = eof && off < 10 ? `truncated length prefix (file ends after ${off} bytes)` : 'malformed length prefix';
          this.stats.truncated = true;
          this.bad({ file: this.file, record, offset: start }, reason);
          return; // framing lost: nothing after this can be trusted
        }
        record++;
        const prefix = off;
        if (len > maxRecord) {
          this.stats.truncated = true;
          this.bad({ file: this.file, record, offset: start }, `record length ${len} exceeds the ${maxRecord}-byte limit (corrupt length prefix?)`);
          return;
        }
        while (buf.length - pos < prefix + len) {
          if (!(await more())) {
            this.stats.truncated = true;
            this.bad({ file: this.file, record, offset: start },
              `truncated record: length prefix says ${len} bytes, file ends after ${buf.length - pos - prefix}`);
            return;
          }
        }
        const body = buf.subarray(pos + prefix, pos + prefix + len);
        pos += prefix + len;
        yield { body, record, offset: start };
      }
    } finally {
      if (this.file !== '-') input.destroy();
    }
  }
}

/** Streams the batches of a .jsonl or .pb trace (or `-`: proto3 JSON lines from stdin). */
export function readTrace(file: string, opts: TraceReadOptions = {}): TraceReader {
  return new TraceReader(file, opts);
}
