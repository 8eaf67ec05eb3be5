// Batched inserts: ClickHouse wants few large inserts (10k–100k rows, about one per second per table).
// Rows are appended as TabSeparated text; an insert starts when a buffer reaches maxRows or its oldest
// row is maxDelayMs old. One insert per table is in flight at a time; a writer that fills the next buffer
// while it runs waits for it (backpressure reaches the bus and the source; nothing is dropped).
import { mkdirSync } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import type { ClickHouseClient } from '@clickhouse/client';

export interface TableWriterOptions {
  maxRows: number;
  maxDelayMs: number;
  /** Attempts per insert before the error surfaces (server hiccups: backoff 100 ms · 2^n, capped at 5 s). */
  attempts: number;
}

export const defaultWriterOptions: TableWriterOptions = { maxRows: 50_000, maxDelayMs: 1_000, attempts: 6 };

// Empty TSV fields are column defaults (NULL for Nullable); enums are written as numbers.
const INSERT_SETTINGS = {
  input_format_tsv_empty_as_default: 1,
  input_format_tsv_enum_as_number: 1,
  async_insert: 0,
} as const;

/** How a buffer reaches ClickHouse. */
export interface InsertPath {
  insert(table: string, columns: readonly string[], body: string): Promise<void>;
}

/** The client's insert: an HTTP body to a server (or inline data for chDB). */
export function clientInsertPath(client: ClickHouseClient): InsertPath {
  return {
    async insert(table, columns, body) {
      await client.insert({
        table, columns: columns as [string, ...string[]],
        values: Readable.from([Buffer.from(body)], { objectMode: false }),
        format: 'TabSeparated',
        clickhouse_settings: INSERT_SETTINGS,
      });
    },
  };
}

/**
 * chDB: the engine reads the rows from a spool file (INSERT … FROM INFILE), the same statement
 * clickhouse-client runs. Inline data makes chDB lex the whole multi-megabyte statement, about 5× slower.
 */
export function spoolFileInsertPath(client: ClickHouseClient, spoolDir: string): InsertPath {
  mkdirSync(spoolDir, { recursive: true });
  let n = 0;
  return {
    async insert(table, columns, body) {
      const file = join(spoolDir, `${table}.${process.pid}.${n++}.tsv`);
      await writeFile(file, body);
      try {
        const settings = Object.entries(INSERT_SETTINGS).map(([k, v]) => `${k} = ${v}`).join(', ');
        await client.command({
          query: `INSERT INTO ${table} (${columns.join(', ')}) FROM INFILE ${sqlString(file)} SETTINGS ${settings} FORMAT TabSeparated`,
        });
      } finally {
        await rm(file, { force: true });
      }
    },
  };
}

/** A string literal for a path this process made (quotes and backslashes escaped). */
function sqlString(s: string): string {
  return `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

export class TableWriter {
  private chunks: string[] = [];
  private rows = 0;
  private firstAt = 0;
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
  ) {}

  get pendingRows(): number { return this.rows; }

  /** Appends rows (TSV text, each line ending in \n). Waits only when a full buffer meets a running insert. */
  async append(text: string, rows: number): Promise<void> {
    if (this.failure) throw this.failure;
    if (rows === 0) return;
    if (this.rows === 0) this.firstAt = Date.now();
    this.chunks.push(text);
    this.rows += rows;
    if (this.rows >= this.opts.maxRows) await this.startInsert();
  }

  /** Timer tick: starts an insert for a buffer older than maxDelayMs, without waiting for it. */
  tick(now: number): void {
    if (this.rows > 0 && !this.inflight && now - this.firstAt >= this.opts.maxDelayMs) void this.startInsert().catch(() => {});
  }

  /** Writes everything buffered and waits until ClickHouse has it. */
  async flush(): Promise<void> {
    if (this.inflight) await this.inflight;
    if (this.failure) throw this.failure;
    if (this.rows > 0) await this.startInsert();
    if (this.inflight) await this.inflight;
    if (this.failure) throw this.failure;
  }

  /** Waits for the running insert, then starts one for the current buffer. */
  private async startInsert(): Promise<void> {
    while (this.inflight) await this.inflight;
    if (this.failure) throw this.failure;
    if (this.rows === 0) return;
    const body = this.chunks.join('');
    const rows = this.rows;
    this.chunks = [];
    this.rows = 0;
    const run = this.insert(body).then(
      () => { this.written += rows; this.inserts++; },
      (err: unknown) => { this.failure = err; },
    ).finally(() => { this.inflight = undefined; });
    this.inflight = run;
  }

  private async insert(body: string): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await this.path.insert(this.table, this.columns, body);
        return;
      } catch (err) {
        if (attempt >= this.opts.attempts || !retriable(err)) throw err;
        await new Promise((r) => setTimeout(r, Math.min(5_000, 100 * 2 ** attempt)));
      }
    }
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
