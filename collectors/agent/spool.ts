// The agent's bounded disk queue for while Kafka is unreachable (docs/design.md §7): append-only segment files,
// replayed from the head in order, deleted once every record in them is acknowledged.
//
// Record: u32 payload length | u32 crc32(payload) | payload = u16 key length | key (utf-8) | value.
// A torn tail (crash during a write) fails its length or CRC check and is cut off at open.
// The read position lives in `cursor` (segment, offset), rewritten by rename after each commit.
import { mkdirSync, readdirSync } from 'node:fs';
import { open, readFile, rename, rm, stat, writeFile, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import zlib from 'node:zlib';

export type FsyncPolicy = 'always' | 'interval' | 'never';

export interface SpoolOptions {
  dir: string;
  /** Unacknowledged bytes kept at most (records beyond it are refused). Default 256 MiB. */
  maxBytes?: number;
  /** Roll to a new segment file at this size. Default 8 MiB. */
  segmentBytes?: number;
  /** 'always': fsync after every append (durable, slow); 'interval': every `fsyncIntervalMs` (default);
   * 'never': leave it to the page cache (survives a crash of the agent, not of the host). */
  fsync?: FsyncPolicy;
  fsyncIntervalMs?: number;
}

export interface SpoolRecord {
  key: string;
  value: Buffer;
  /** Position just after this record: pass to `commit`. */
  next: { segment: number; offset: number };
}

const HEADER = 8;
/** CRC-32 (IEEE 802.3, as zip and gzip), by zlib. */
export function crc32(buf: Uint8Array): number {
  return zlib.crc32(buf);
}

function segName(n: number): string { return `${String(n).padStart(12, '0')}.seg`; }

export function encodeRecord(key: string, value: Uint8Array): Buffer {
  const k = Buffer.from(key, 'utf8');
  const payloadLen = 2 + k.length + value.byteLength;
  const buf = Buffer.allocUnsafe(HEADER + payloadLen);
  buf.writeUInt32LE(payloadLen, 0);
  buf.writeUInt16LE(k.length, HEADER);
  k.copy(buf, HEADER + 2);
  buf.set(value, HEADER + 2 + k.length);
  buf.writeUInt32LE(crc32(buf.subarray(HEADER)), 4);
  return buf;
}

/** Parse whole records from `buf`; stops at the first incomplete or corrupt one. */
function parseRecords(buf: Buffer, segment: number, base: number, max = Infinity): { records: SpoolRecord[]; end: number; corrupt: boolean } {
  const records: SpoolRecord[] = [];
  let pos = 0;
  while (records.length < max && pos + HEADER <= buf.length) {
    const len = buf.readUInt32LE(pos);
    if (len < 2 || pos + HEADER + len > buf.length) return { records, end: pos, corrupt: len < 2 };
    const payload = buf.subarray(pos + HEADER, pos + HEADER + len);
    if (crc32(payload) !== buf.readUInt32LE(pos + 4)) return { records, end: pos, corrupt: true };
    const klen = payload.readUInt16LE(0);
    if (2 + klen > len) return { records, end: pos, corrupt: true };
    pos += HEADER + len;
    records.push({ key: payload.toString('utf8', 2, 2 + klen), value: Buffer.from(payload.subarray(2 + klen)),
      next: { segment, offset: base + pos } });
  }
  return { records, end: pos, corrupt: false };
}

export class DiskSpool {
  /** size: bytes of whole records; sealed: never appended to again (a failed write could not be cut back). */
  private segments: { id: number; size: number; sealed?: boolean }[] = [];
  private cursor = { segment: 0, offset: 0 };
  private writer: FileHandle | undefined;
  private writing: Promise<void> = Promise.resolve();
  private syncTimer: NodeJS.Timeout | undefined;
  private dirty = false;
  private closed = false;
  private unacked = 0;
  private count = 0;
  readonly maxBytes: number;
  readonly segmentBytes: number;
  readonly fsync: FsyncPolicy;
  /** Bytes cut off at open (torn or corrupt tails). */
  truncatedBytes = 0;
  /** Appends whose write failed (e.g. ENOSPC): nothing of them was kept. */
  failedWrites = 0;
  /** Background fsyncs that failed (fsync 'interval'), and the last such error. */
  syncErrors = 0;
  lastSyncError: unknown;

  private constructor(readonly opts: SpoolOptions) {
    this.maxBytes = opts.maxBytes ?? 256 << 20;
    this.segmentBytes = opts.segmentBytes ?? 8 << 20;
    this.fsync = opts.fsync ?? 'interval';
  }

  static async open(opts: SpoolOptions): Promise<DiskSpool> {
    const s = new DiskSpool(opts);
    await s.recover();
    return s;
  }

  /** Unacknowledged bytes on disk (or queued for it). */
  get bytes(): number { return this.unacked; }
  /** Unacknowledged records. */
  get records(): number { return this.count; }
  get empty(): boolean { return this.count === 0; }

  hasRoom(recordBytes: number): boolean { return this.unacked + recordBytes <= this.maxBytes; }

  private async recover(): Promise<void> {
    mkdirSync(this.opts.dir, { recursive: true });
    await rm(join(this.opts.dir, 'cursor.tmp'), { force: true }); // a commit killed between write and rename
    try {
      this.cursor = JSON.parse(await readFile(join(this.opts.dir, 'cursor'), 'utf8')) as { segment: number; offset: number };
    } catch { this.cursor = { segment: 0, offset: 0 }; }
    const ids = readdirSync(this.opts.dir).filter((f) => /^\d{12}\.seg$/.test(f)).map((f) => Number(f.slice(0, 12))).sort((a, b) => a - b);
    for (const id of ids) {
      const path = join(this.opts.dir, segName(id));
      if (id < this.cursor.segment) { await rm(path, { force: true }); continue; }
      const buf = await readFile(path);
      const { records, end } = parseRecords(buf, id, 0);
      if (end < buf.length) {
        this.truncatedBytes += buf.length - end;
        const fh = await open(path, 'r+');
        await fh.truncate(end); await fh.sync(); await fh.close();
      }
      this.segments.push({ id, size: end });
      const from = id === this.cursor.segment ? this.cursor.offset : 0;
      for (const r of records) if (r.next.offset > from) this.count++;
      this.unacked += Math.max(0, end - from);
    }
    if (this.segments.length === 0 || this.segments[0].id > this.cursor.segment) {
      this.cursor = { segment: this.segments[0]?.id ?? this.cursor.segment, offset: 0 };
    }
  }

  /** Queue a record at the tail. Returns null (nothing queued) when it does not fit in `maxBytes`; else a
   * promise that resolves once the record is written and rejects with the write's error (ENOSPC, EIO):
   * then nothing of it is kept and it counts neither in `bytes` nor in `records`. Records are written in
   * append order; one that failed leaves no trace between its neighbours. */
  append(key: string, value: Uint8Array): Promise<void> | null {
    if (this.closed) throw new Error('spool is closed');
    const rec = encodeRecord(key, value);
    if (!this.hasRoom(rec.length)) return null;
    this.unacked += rec.length; // reserved now, so that later appends see the bound and keep the order
    this.count++;
    const written = this.writing.then(() => this.write(rec)).catch((err: unknown) => {
      this.unacked -= rec.length;
      this.count--;
      this.failedWrites++;
      throw err;
    });
    this.writing = written.catch(() => undefined);
    return written;
  }

  private async write(rec: Buffer): Promise<void> {
    let last = this.segments[this.segments.length - 1];
    const roll = !last || last.sealed === true || (last.size > 0 && last.size + rec.length > this.segmentBytes);
    if (roll || !this.writer) {
      if (this.writer) { const w = this.writer; this.writer = undefined; await w.sync(); await w.close(); }
      const seg: { id: number; size: number; sealed?: boolean } = roll ? { id: last ? last.id + 1 : this.cursor.segment, size: 0 } : last!;
      this.writer = await open(join(this.opts.dir, segName(seg.id)), 'a');
      if (roll) this.segments.push(seg); // only once its file exists
      last = seg;
    }
    try {
      // a write may be short (the disk fills up in the middle of it): write the rest, which then fails
      for (let done = 0; done < rec.length;) {
        const { bytesWritten } = await this.writer.write(rec, done, rec.length - done);
        if (bytesWritten <= 0) throw new Error(`spool write made no progress at byte ${done} of ${rec.length}`);
        done += bytesWritten;
      }
    } catch (err) {
      // A short write (disk full) may have left part of the record: cut the file back to its last whole
      // record, or, if even that fails, leave the file (reads stop at `size`, recovery cuts the torn tail)
      // and continue in a new one.
      const w = this.writer;
      this.writer = undefined;
      try { await w.truncate(last.size); } catch { last.sealed = true; }
      await w.close().catch(() => undefined);
      throw err;
    }
    last.size += rec.length;
    if (this.fsync === 'always') await this.writer.sync();
    else if (this.fsync === 'interval') {
      this.dirty = true;
      this.syncTimer ??= setTimeout(() => {
        this.syncTimer = undefined;
        void this.sync().catch((err: unknown) => { this.syncErrors++; this.lastSyncError = err; });
      }, this.opts.fsyncIntervalMs ?? 1000);
    }
  }

  private async sync(): Promise<void> {
    await this.writing;
    if (this.dirty && this.writer) { this.dirty = false; await this.writer.sync(); }
  }

  /** Up to `max` records (and about `maxBytes`) from the head, without consuming them. */
  async read(max = 256, maxBytes = 1 << 20): Promise<SpoolRecord[]> {
    await this.writing;
    const out: SpoolRecord[] = [];
    let { segment, offset } = this.cursor;
    let budget = maxBytes;
    for (const seg of this.segments) {
      if (seg.id < segment) continue;
      if (seg.id > segment) { segment = seg.id; offset = 0; }
      if (offset >= seg.size) continue;
      const fh = await open(join(this.opts.dir, segName(seg.id)), 'r');
      try {
        const len = Math.min(seg.size - offset, Math.max(budget, 64 << 10));
        let buf = Buffer.allocUnsafe(len);
        const { bytesRead } = await fh.read(buf, 0, len, offset);
        buf = buf.subarray(0, bytesRead);
        let { records } = parseRecords(buf, seg.id, offset, max - out.length);
        if (records.length === 0 && bytesRead < seg.size - offset) {
          // one record bigger than the budget: read exactly it
          const size = HEADER + buf.readUInt32LE(0);
          const big = Buffer.allocUnsafe(size);
          await fh.read(big, 0, size, offset);
          records = parseRecords(big, seg.id, offset, 1).records;
        }
        for (const r of records) { out.push(r); budget -= r.value.length + HEADER; }
      } finally { await fh.close(); }
      if (out.length >= max || budget <= 0) break;
    }
    return out;
  }

  /** Everything up to `next` (from a read record) is acknowledged: advance the head, drop finished segments. */
  async commit(next: { segment: number; offset: number }, records: number): Promise<void> {
    let freed = 0;
    for (const seg of this.segments) {
      if (seg.id < this.cursor.segment) continue;
      if (seg.id > next.segment) break;
      const from = seg.id === this.cursor.segment ? this.cursor.offset : 0;
      const to = seg.id === next.segment ? next.offset : seg.size;
      freed += to - from;
    }
    this.cursor = { ...next };
    this.unacked -= freed;
    this.count -= records;
    // segments before the cursor's are fully acknowledged (the tail is never before it)
    while (this.segments.length > 0 && this.segments[0].id < next.segment) {
      const head = this.segments.shift()!;
      await rm(join(this.opts.dir, segName(head.id)), { force: true });
    }
    if (this.count === 0) {
      // empty: start over in a fresh segment so the file does not grow forever. In the write queue, so that no
      // write runs while the files go (an append made meanwhile counts at once: then the spool is not empty and
      // nothing is removed; its write waits for this)
      const reset = this.writing.then(async () => {
        if (this.count !== 0 || this.segments.length === 0) return;
        if (this.writer) { const w = this.writer; this.writer = undefined; await w.close(); }
        const id = this.segments[this.segments.length - 1].id + 1;
        for (const seg of this.segments) await rm(join(this.opts.dir, segName(seg.id)), { force: true });
        this.segments = [];
        this.cursor = { segment: id, offset: 0 };
        this.unacked = 0;
      });
      this.writing = reset.catch(() => undefined);
      await reset;
    }
    const tmp = join(this.opts.dir, 'cursor.tmp');
    try {
      await writeFile(tmp, JSON.stringify(this.cursor));
      await rename(tmp, join(this.opts.dir, 'cursor'));
    } catch (err) {
      await rm(tmp, { force: true }); // (a disk too full for the cursor: the old one stays, replay may resend)
      throw err;
    }
  }

  /** Wait for queued appends and fsync them. */
  async flush(): Promise<void> {
    await this.writing;
    if (this.writer) await this.writer.sync();
    this.dirty = false;
  }

  async close(): Promise<void> {
    await this.flush();
    this.closed = true;
    if (this.syncTimer) clearTimeout(this.syncTimer);
    if (this.writer) { await this.writer.close(); this.writer = undefined; }
  }

  /** Bytes of segment files on disk (for tests and health). */
  async diskBytes(): Promise<number> {
    let n = 0;
    for (const seg of this.segments) {
      try { n += (await stat(join(this.opts.dir, segName(seg.id)))).size; } catch { /* removed */ }
    }
    return n;
  }
}
