// Batched inserts: ClickHouse wants few large inserts (10k rows and up, at most about one per second per table).
// Rows collect in a buffer (TabSeparated text, or Native columns for raw events: native.ts); an insert
// starts when a buffer reaches maxRows or its oldest row is maxDelayMs old. One insert per table is in
// flight at a time; a writer that fills the next buffer while it runs waits for it (backpressure reaches
// the bus and the source; nothing is dropped).
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import type { ClickHouseClient } from '@clickhouse/client';
import { retry } from '../lib/retry.js';

export interface TableWriterOptions {
  maxRows: number;
  maxDelayMs: number;
  /** Attempts per insert before the error surfaces (server hiccups: backoff 100 ms · 2^n, capped at 5 s). */
  attempts: number;
}

// 600k rows or 4 s. Each insert makes a part in the table and in every view's table (episodes feed the dedup
// view and three rollups), and the engine's cost is mostly per part: creating, then merging it. Embedded, chDB
// also runs one query at a time per connection, so every insert holds its connection's lane for its whole run.
// Measured on the embedded pipeline (BENCHMARKS.md), engine CPU-s per million events: 5.9–6.3 at 100k/1 s,
// 2.6–3.3 at 300k/2 s, 2.2–2.5 at 600k/4 s. Findings keep a 1 s delay (alerting reads them).
export const defaultWriterOptions: TableWriterOptions = { maxRows: 600_000, maxDelayMs: 4_000, attempts: 6 };

export type InsertFormat = 'TabSeparated' | 'Native';

// Empty TSV fields are column defaults (NULL for Nullable); enums are written as numbers.
const TSV_SETTINGS = {
  input_format_tsv_empty_as_default: 1,
  input_format_tsv_enum_as_number: 1,
  async_insert: 0,
} as const;
// optimize_on_insert = 0: a ReplacingMergeTree insert otherwise collapses duplicate keys inside the block
// before writing (an extra sort-and-merge pass per insert, ≈ 0.5 µs per raw event measured); duplicates are
// collapsed by merges and every reader of raw events uses FINAL, so the pass bought nothing.
const NATIVE_SETTINGS = { async_insert: 0, optimize_on_insert: 0 } as const;
const settingsFor = (format: InsertFormat) => (format === 'Native' ? NATIVE_SETTINGS : TSV_SETTINGS);

/** How a buffer reaches ClickHouse. */
export interface InsertPath {
  insert(table: string, columns: readonly string[], body: string | Uint8Array, format: InsertFormat): Promise<void>;
}

/** The client's insert: an HTTP body to a server. */
export function clientInsertPath(client: ClickHouseClient): InsertPath {
  return {
    async insert(table, columns, body, format) {
      const bytes = typeof body === 'string' ? Buffer.from(body) : body;
      if (format === 'TabSeparated') {
        await client.insert({
          table, columns: columns as [string, ...string[]],
          values: Readable.from([bytes], { objectMode: false }),
          format, clickhouse_settings: TSV_SETTINGS,
        });
        return;
      }
      // the client's insert() knows text formats only; a binary body goes through exec
      const res = await client.exec({
        query: `INSERT INTO ${table} (${columns.join(', ')}) FORMAT ${format}`,
        values: Readable.from([bytes], { objectMode: false }),
        clickhouse_settings: settingsFor(format),
      });
      for await (const _ of res.stream) { /* empty response body */ }
    },
  };
}

/**
 * chDB: the engine reads the rows from a spool file (INSERT … FROM INFILE), the same statement
 * clickhouse-client runs. Inline data makes chDB lex the whole multi-megabyte statement, about 5× slower,
 * and cannot carry binary formats.
 */
let spooled = 0; // file names unique across the paths (connections) of this process
export function spoolFileInsertPath(client: ClickHouseClient, spoolDir: string): InsertPath {
  mkdirSync(spoolDir, { recursive: true });
  removeStaleSpoolFiles(spoolDir);
  return {
    async insert(table, columns, body, format) {
      const file = join(spoolDir, `${table}.${process.pid}.${spooled++}.${format === 'Native' ? 'native' : 'tsv'}`);
      try {
        // Synchronous on purpose: a few MB into the page cache take milliseconds, while an async write queues
        // on libuv's thread pool behind chDB's own queries (each holds a pool thread while it runs) — seconds.
        // Inside the try: a write cut short (disk full) must not leave its part behind.
        writeFileSync(file, body);
        const settings = Object.entries(settingsFor(format)).map(([k, v]) => `${k} = ${v}`).join(', ');
        await client.command({
          query: `INSERT INTO ${table} (${columns.join(', ')}) FROM INFILE ${sqlString(file)} SETTINGS ${settings} FORMAT ${format}`,
        });
      } finally {
        rmSync(file, { force: true });
      }
    },
  };
}

/** An insert file's name: `<database>.<table>.<pid>.<n>.native|tsv` (the pid is the second number from the end). */
const SPOOL_FILE = /^(?:[A-Za-z0-9_]+\.)+([0-9]+)\.[0-9]+\.(?:native|tsv)$/;
const cleanedSpoolDirs = new Set<string>();

/** Insert files left in `spoolDir` by a process that was killed mid-insert (or by a full disk, before the
 * write moved inside the try): removed the first time this process uses the directory, so a disk that filled
 * up does not stay full. Files of another live process (a second store on the same data dir) are kept; this
 * process's pid counts as dead here, since none of its inserts has started yet (a container restarts with the
 * same pid). Returns the files removed. */
export function removeStaleSpoolFiles(spoolDir: string): string[] {
  const key = resolve(spoolDir);
  if (cleanedSpoolDirs.has(key)) return [];
  cleanedSpoolDirs.add(key);
  const removed: string[] = [];
  for (const name of readdirSync(spoolDir)) {
    const m = SPOOL_FILE.exec(name);
    if (!m) continue;
    const pid = Number(m[1]);
    if (pid !== process.pid && processAlive(pid)) continue;
    rmSync(join(spoolDir, name), { force: true });
    removed.push(name);
  }
  return removed;
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'; // exists, owned by someone else
  }
}

/** A string literal for a path this process made (quotes and backslashes escaped). */
function sqlString(s: string): string {
  return `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

/** Rows waiting for an insert. */
export interface RowBuffer {
  readonly rows: number;
  /** The buffered rows as one insert body; the buffer is empty afterwards. The body may live in memory the
   * buffer reuses: it is valid until the next take(). */
  take(): string | Uint8Array;
}

/** TabSeparated text, appended in chunks of whole rows. */
export class TextRows implements RowBuffer {
  private chunks: string[] = [];
  rows = 0;
  add(text: string, rows: number): void { this.chunks.push(text); this.rows += rows; }
  take(): string {
    const body = this.chunks.join('');
    this.chunks = [];
    this.rows = 0;
    return body;
  }
}

export class TableWriter<B extends RowBuffer = TextRows> {
  private firstAt = -1;
  private inflight: Promise<void> | undefined;
  private failure: unknown;
  /** Rows written by completed inserts. */
  written = 0;
  inserts = 0;

  constructor(
    private readonly path: InsertPath,
    readonly table: string,
    private readonly columns: readonly string[],
    private readonly opts: TableWriterOptions,
    /** Where rows collect: callers add to it, then call added(). */
    readonly buffer: B = new TextRows() as unknown as B,
    private readonly format: InsertFormat = 'TabSeparated',
  ) {}

  get pendingRows(): number { return this.buffer.rows; }

  /** Appends rows (TSV text, each line ending in \n) to a text writer. */
  async append(text: string, rows: number): Promise<void> {
    if (this.failure) throw this.failure;
    if (rows === 0) return;
    (this.buffer as unknown as TextRows).add(text, rows);
    await this.added();
  }

  /** After rows went into the buffer: starts the age clock; a full buffer starts an insert, waiting only
   * when the previous insert still runs. */
  async added(): Promise<void> {
    if (this.failure) throw this.failure;
    if (this.firstAt < 0 && this.buffer.rows > 0) this.firstAt = Date.now();
    if (this.buffer.rows >= this.opts.maxRows) await this.startInsert();
  }

  /** Timer tick: starts an insert for a buffer older than maxDelayMs, without waiting for it. */
  tick(now: number): void {
    if (this.buffer.rows > 0 && !this.inflight && this.firstAt >= 0 && now - this.firstAt >= this.opts.maxDelayMs) {
      void this.startInsert().catch(() => {});
    }
  }

  /** Writes everything buffered and waits until ClickHouse has it. */
  async flush(): Promise<void> {
    if (this.inflight) await this.inflight;
    if (this.failure) throw this.failure;
    if (this.buffer.rows > 0) await this.startInsert();
    if (this.inflight) await this.inflight;
    if (this.failure) throw this.failure;
  }

  /** Waits for the running insert, then starts one for the current buffer. */
  private async startInsert(): Promise<void> {
    while (this.inflight) await this.inflight;
    if (this.failure) throw this.failure;
    const rows = this.buffer.rows;
    if (rows === 0) return;
    const body = this.buffer.take();
    this.firstAt = -1;
    const run = this.insert(body).then(
      () => { this.written += rows; this.inserts++; },
      (err: unknown) => { this.failure = err; },
    ).finally(() => { this.inflight = undefined; });
    this.inflight = run;
  }

  private async insert(body: string | Uint8Array): Promise<void> {
    await retry(() => this.path.insert(this.table, this.columns, body, this.format),
      { tries: this.opts.attempts, retriable, backoff: 'exponential', baseMs: 200, maxMs: 5_000 });
  }
}

/** Network and overload errors are retried; schema and data errors are not. */
function retriable(err: unknown): boolean {
  const e = err as { code?: string; message?: string };
  if (typeof e?.code === 'string' && /^(ECONNRESET|ECONNREFUSED|ETIMEDOUT|EPIPE|EAI_AGAIN|UND_ERR)/.test(e.code)) return true;
  // ClickHouse: TOO_MANY_PARTS (252), TIMEOUT_EXCEEDED (159), TOO_MANY_SIMULTANEOUS_QUERIES (202)
  return typeof e?.code === 'string' && ['252', '159', '202'].includes(e.code);
}

/** TSV text escaping (\\, tab, newline) — fast path when nothing needs it. */
const NEEDS_ESCAPE = /[\t\n\r\\]/;
export function tsv(s: string | null | undefined): string {
  if (!s) return '';
  if (!NEEDS_ESCAPE.test(s)) return s;
  return s.replace(/[\t\n\r\\]/g, (c) => (c === '\t' ? '\\t' : c === '\n' ? '\\n' : c === '\r' ? '\\r' : '\\\\'));
}
