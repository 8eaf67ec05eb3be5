// One rule evaluator per store: the lease in ClickHouse (table alerting_lease, migration 5) that says which API
// process evaluates the rules and sends the notifications, however many replicas serve the API.
//
// ClickHouse has no compare-and-swap, so the lease is a queue of claims rather than one row: each process that
// wants to evaluate writes its own row (name, holder, since_ms, renewed_ms) at every evaluation, and the holder
// is the live claim (renewed within the lease's ttl) with the oldest since_ms (ties: the smaller holder id).
// Every process decides from the same rows, so they agree without talking to each other:
//   - a newcomer's claim starts after every live claim it sees (since_ms = max(now, their since + 1)): it queues
//     behind the holder instead of taking over;
//   - a holder that stops cleanly withdraws its claim (since_ms = RELEASED: never holds, never counts), so the
//     next in line takes over at its next evaluation; one that dies stops renewing and is passed over once its
//     claim is older than the ttl;
//   - a process whose own claim lapsed (paused longer than the ttl) claims anew, behind the others.
// Two processes that start within the same millisecond, each before the other's first write, may both hold for
// one evaluation; past that the order is total. The rows are ReplacingMergeTree(renewed_ms) by (name, holder),
// read with FINAL, and expire a day after their last renewal.
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import type { ClickHouseClient } from '@clickhouse/client';
import { checkIdentifier, TABLES } from '../../store/schema.js';

/** since_ms of a withdrawn claim (the largest integer JSON carries exactly). */
export const RELEASED = Number.MAX_SAFE_INTEGER;

export interface LeaseOptions {
  client: ClickHouseClient;
  database: string;
  /** A claim not renewed for this long is dead (ms). */
  ttlMs: number;
  /** Clock (ms). */
  now: () => number;
  /** This process's id (default: hostname/pid/random). */
  holder?: string;
  /** Which lease (default rule-evaluator). */
  name?: string;
}

export class Lease {
  readonly holder: string;
  readonly name: string;
  private readonly table: string;
  private sinceMs: number | undefined;
  private renewedMs = 0;
  /** Whether the last renew() found this process the holder. */
  held = false;

  constructor(private readonly o: LeaseOptions) {
    this.holder = o.holder ?? `${hostname()}/${process.pid}/${randomBytes(4).toString('hex')}`;
    this.name = o.name ?? 'rule-evaluator';
    this.table = `${checkIdentifier('database', o.database)}.${TABLES.alertingLease}`;
  }

  /** Live claims at `now`, oldest first. */
  private async claims(now: number): Promise<{ holder: string; since: number }[]> {
    const rs = await this.o.client.query({
      query: `SELECT holder, since_ms FROM ${this.table} FINAL
              WHERE name = {name:String} AND renewed_ms >= {cutoff:Int64} AND since_ms < {released:Int64}
              ORDER BY since_ms, holder`,
      query_params: { name: this.name, cutoff: now - this.o.ttlMs, released: RELEASED }, format: 'JSONEachRow',
    });
    return (await rs.json<{ holder: string; since_ms: string | number }>()).map((r) => ({ holder: r.holder, since: Number(r.since_ms) }));
  }

  private async write(sinceMs: number, renewedMs: number): Promise<void> {
    await this.o.client.insert({ table: this.table, format: 'JSONEachRow', clickhouse_settings: { async_insert: 0 },
      values: [{ name: this.name, holder: this.holder, since_ms: sinceMs, renewed_ms: renewedMs }] });
  }

  /** Renew this process's claim (or make one) and say whether it holds the lease now. */
  async renew(): Promise<boolean> {
    const now = this.o.now();
    if (this.sinceMs === undefined || now - this.renewedMs > this.o.ttlMs) {
      const others = (await this.claims(now)).filter((c) => c.holder !== this.holder);
      this.sinceMs = Math.max(now, ...others.map((c) => c.since + 1));
    }
    this.renewedMs = Math.max(now, this.renewedMs);
    await this.write(this.sinceMs, this.renewedMs);
    const first = (await this.claims(now))[0];
    this.held = first?.holder === this.holder;
    return this.held;
  }

  /** Withdraw the claim (a clean stop): the next in line holds from its next renewal. */
  async release(): Promise<void> {
    if (this.sinceMs === undefined) return;
    this.held = false;
    this.sinceMs = undefined;
    await this.write(RELEASED, Math.max(this.o.now(), this.renewedMs));
  }
}
