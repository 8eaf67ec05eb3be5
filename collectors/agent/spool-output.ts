// The agent's output stage (docs/design.md §3, §7): numbers events, cuts EventBatches, and hands them to the transport
// without ever blocking the agent. While the transport keeps up, batches go straight to it; when it stops
// acknowledging (Kafka unreachable) and `memoryBytes` are outstanding, batches go to the disk spool, which is
// replayed in order before anything is sent directly again. A batch that fits nowhere, or whose spool write
// fails (disk full), is counted into the next stored batch's `dropped` (its seq numbers stay used, so the
// correlator also sees the gap) and reported; the output keeps going.
import { v1, type Cgroup, type Event, type HostInfo, type KernelStack } from '../../services/core/model.js';
import type { EventSink } from '../../services/transport/types.js';
import { DiskSpool } from './spool.js';

export interface CollectorOutputOptions {
  host: HostInfo;
  sink: EventSink;
  spool: DiskSpool;
  /** Unacknowledged bytes allowed in the transport before new batches go to the spool. Default 8 MiB. */
  memoryBytes?: number;
  /** First sequence number (per host and boot). Default 0. */
  firstSeq?: number;
  /** Called when a send fails for good (not an outage: kafkajs retries those forever), when a batch could not
   * be written to the spool (counted as dropped), and when reading or committing the spool fails (retried). */
  onError?: (err: unknown, where: OutputFailure) => void;
}

/** 'send': a direct send failed (dropped); 'spool-write': a batch could not be spooled (dropped);
 * 'replay': sending spooled batches failed (kept, retried); 'spool-read' / 'spool-commit': the spool could
 * not be read (retried) or its read position not be saved (the batches were sent; a restart resends them). */
export type OutputFailure = 'send' | 'spool-write' | 'replay' | 'spool-read' | 'spool-commit';

export interface CollectorOutputStats {
  batches: number;
  events: number;
  /** Batches written to the disk spool. */
  spooledBatches: number;
  /** Batches whose spool write failed (their events are in droppedEvents). */
  spoolWriteErrors: number;
  /** Events neither sent nor spooled; reported in a later batch's `dropped`. */
  droppedEvents: number;
  /** Collector (ring buffer) drops passed in by the caller. */
  ringDropped: number;
  failedSends: number;
}

export class CollectorOutput {
  readonly stats: CollectorOutputStats = { batches: 0, events: 0, spooledBatches: 0, spoolWriteErrors: 0, droppedEvents: 0, ringDropped: 0,
    failedSends: 0 };
  private nextSeq: number;
  private pendingDropped = 0;
  private inflightBytes = 0;
  private inflight = new Set<Promise<void>>();
  /** Spool writes not yet settled (their batch counts as spooled or dropped once they are). */
  private spooling = new Set<Promise<void>>();
  private replaying: Promise<void> | undefined;
  private readonly memoryBytes: number;
  private closed = false;

  constructor(private readonly opts: CollectorOutputOptions) {
    this.nextSeq = opts.firstSeq ?? 0;
    this.memoryBytes = opts.memoryBytes ?? 8 << 20;
    if (!opts.spool.empty) this.kickReplay(); // left over from a previous run: it goes first
  }

  get seq(): number { return this.nextSeq; }
  /** Events lost so far that the next stored batch will report in `dropped`. */
  get owedDropped(): number { return this.pendingDropped; }

  /** Number, batch and route `events`; `ringDropped` = events the probe side lost just before them (ring overruns,
   * and decoded events the agent refused: EventScreen); `nowNs` = the collector's clock when the batch was cut
   * (EventBatch.now_ns; an empty batch is a heartbeat); `lookups`: new entries of the boot's cgroup and stack tables
   * (lost with the batch if it fits nowhere: those ids then stay unnamed). */
  push(events: Event[], ringDropped = 0, nowNs?: number, lookups: { cgroups?: Cgroup[]; stacks?: KernelStack[] } = {}): void {
    if (this.closed) throw new Error('collector output is closed');
    this.stats.ringDropped += ringDropped;
    const batch = { host: this.opts.host, firstSeq: this.nextSeq, dropped: this.pendingDropped + ringDropped, events, ...(nowNs ? { nowNs } : {}),
      ...lookups };
    this.nextSeq += events.length;
    const value = v1.EventBatch.encode(batch).finish();
    const key = this.opts.host.hostname ?? '';
    const spool = this.opts.spool;
    if (spool.empty && !this.replaying && this.inflightBytes + value.byteLength <= this.memoryBytes) {
      this.sendDirect(key, value, batch.dropped, events.length);
      this.stats.batches++;
      this.stats.events += events.length;
    } else {
      const written = spool.append(key, value);
      if (!written) {
        // no room anywhere: the events and the loss this batch was carrying move to the next batch
        this.pendingDropped = batch.dropped + events.length;
        this.stats.droppedEvents += events.length;
        return;
      }
      // spooled only once written; a failed write (disk full) loses the batch like no room would
      const n = events.length;
      const settled: Promise<void> = written.then(() => {
        this.stats.spooledBatches++;
        this.stats.batches++;
        this.stats.events += n;
      }, (err: unknown) => {
        this.stats.spoolWriteErrors++;
        this.stats.droppedEvents += n;
        this.pendingDropped += batch.dropped + n;
        this.opts.onError?.(err, 'spool-write');
      }).finally(() => { this.spooling.delete(settled); });
      this.spooling.add(settled);
      this.kickReplay();
    }
    this.pendingDropped = 0;
  }

  private sendDirect(key: string, value: Uint8Array, carriedDropped: number, events: number): void {
    const bytes = value.byteLength;
    this.inflightBytes += bytes;
    const p: Promise<void> = this.opts.sink.send([{ key, value }]).catch((err: unknown) => {
      // not retriable (e.g. a message the broker refuses): account for it, never lose it silently
      this.stats.failedSends++;
      this.stats.droppedEvents += events;
      this.pendingDropped += carriedDropped + events;
      this.opts.onError?.(err, 'send');
    }).finally(() => {
      this.inflightBytes -= bytes;
      this.inflight.delete(p);
      if (!this.opts.spool.empty) this.kickReplay();
    });
    this.inflight.add(p);
  }

  private kickReplay(): void {
    if (this.replaying) return;
    // replay() handles its own failures; this catch only guarantees that nothing escapes as an unhandled rejection
    this.replaying = this.replay().catch((err: unknown) => { this.opts.onError?.(err, 'replay'); })
      .finally(() => { this.replaying = undefined; });
  }

  /** Spool → transport, in order, after every direct send made before spooling began has settled. Failures
   * are reported and retried after a pause: the records stay in the spool until the transport has them. */
  private async replay(): Promise<void> {
    while (this.inflight.size > 0) await Promise.all(this.inflight);
    const spool = this.opts.spool;
    const pause = (): Promise<void> => new Promise((r) => setTimeout(r, 1000));
    while (!spool.empty) {
      let recs;
      try {
        recs = await spool.read(512, 1 << 20);
      } catch (err) {
        this.opts.onError?.(err, 'spool-read');
        await pause();
        continue;
      }
      // (not empty, yet nothing to read: never a loop without I/O, which would starve the agent's event loop)
      if (recs.length === 0) { await new Promise((r) => setTimeout(r, 100)); break; }
      try {
        await this.opts.sink.send(recs.map((r) => ({ key: r.key, value: r.value })));
      } catch (err) {
        this.stats.failedSends++;
        this.opts.onError?.(err, 'replay');
        await pause(); // keep the records; try again
        continue;
      }
      try {
        await spool.commit(recs[recs.length - 1].next, recs.length);
      } catch (err) {
        // the head moved in memory (the records were sent); only the saved position is behind
        this.opts.onError?.(err, 'spool-commit');
      }
    }
  }

  /** Resolves when every batch pushed so far is acknowledged by the transport (spool replay included). */
  async flush(): Promise<void> {
    for (;;) {
      while (this.inflight.size > 0) await Promise.all(this.inflight);
      if (this.spooling.size > 0) { await Promise.all(this.spooling); continue; }
      if (this.replaying) { await this.replaying; continue; }
      if (!this.opts.spool.empty) { this.kickReplay(); continue; }
      if (this.inflight.size === 0) return;
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.flush();
    await this.opts.spool.close();
  }
}
