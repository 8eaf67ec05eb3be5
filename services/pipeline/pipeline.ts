// The pipeline, one for both modes: an EventSource (the in-process bus, or Kafka) delivers encoded EventBatches per
// partition; each partition has a stage (stage.ts: the wire reader → raw-event rows + correlator + host health); its
// outputs go to the EventStore, findings also to an optional publisher (Kafka). Each message is read once.
//
// Durability: an offset is acknowledged to the source (which commits it, Kafka) only after everything derived from
// the messages before it is durable: store flushed, findings and dead letters sent, checkpoints written. Correlator
// state spans messages, so a restart cannot begin at the committed offset with an empty correlator: at most every
// `checkpointIntervalMs` / `checkpointMessages` each partition's state is stored with the offset it belongs to; a
// newly assigned partition restores its newest checkpoint and is replayed from there (from its earliest offset
// without one) with outputs suppressed below the committed offset (they are stored already). Ids are deterministic,
// so anything written twice around a crash replaces itself (ReplacingMergeTree).
//
// Bad input never stops a partition: a message the wire reader rejects, or whose handling throws, is dead-lettered
// with its reason and offset (Kafka: the DLQ topic; embedded: counted and logged) and the partition goes on.
import { Correlator, type CorrelatorOptions } from '../core/correlator/index.js';
import type { Finding } from '../core/model.js';
import type { BootSeen, EventStore } from '../store/types.js';
import type { Assignment, EventSource, TransportMessage } from '../transport/types.js';
import { silentLog, type Log } from '../lib/log.js';
import { HostHealthTracker } from './health.js';
import { PartitionStage, type DeadLetterReason } from './stage.js';

/** Where the pipeline keeps correlator checkpoints and dead-letter counts (ClickHouse: services/store). */
export interface CheckpointStore {
  latest(partitions: number[]): Promise<Map<number, { offset: number; state: string }>>;
  write(checkpoints: { partition: number; offset: number; state: string }[]): Promise<void>;
  writeDeadLetters(rows: { timeMs: number; partition: number; reason: string; count: number }[]): Promise<void>;
}

/** Findings and dead letters to the transport (Kafka: KafkaPublisher); `settled()` before any acknowledgement. */
export interface Publisher {
  findings(findings: Finding[]): void;
  deadLetter(m: TransportMessage, reason: string): void;
  settled(): Promise<void>;
}

export interface PipelineOptions {
  source: EventSource;
  store: EventStore;
  correlator?: Partial<CorrelatorOptions>;
  checkpoints?: CheckpointStore;
  publisher?: Publisher;
  /** Acknowledge (flush + checkpoint + ack) at most this often; undefined: only at the end (embedded mode). */
  ackIntervalMs?: number;
  /** Checkpoint a partition at most this often (default 10000 ms) ... */
  checkpointIntervalMs?: number;
  /** ... or once it has taken this many messages since its last checkpoint (default 20000). */
  checkpointMessages?: number;
  /** Collector health rows are written at least this often (ms). Default 10 s. */
  healthIntervalMs?: number;
  /** Aborting stops reading; what was read is still processed, flushed and acknowledged (correlators stay open:
   * the next run rebuilds them by replay). */
  signal?: AbortSignal;
  /** Observes findings as they are emitted, with the produce time of the message that completed them (latency). */
  onFindings?: (findings: Finding[], producedAtMs: number) => void;
  log?: Log;
  now?: () => number;
}

export interface PipelineStats {
  /** Messages delivered (replayed ones apart). */
  messages: number;
  replayedMessages: number;
  /** Batches and events the correlator took (replays apart). */
  batches: number;
  events: number;
  episodes: number;
  revokeEpisodes: number;
  findings: number;
  findingsBySeverity: Record<string, number>;
  /** Messages dead-lettered, by reason class. */
  deadLettered: number;
  deadLetterReasons: Record<string, number>;
  acks: number;
  checkpoints: number;
  /** Partitions that started from a checkpoint. */
  restored: number;
  /** Wall time waiting for store writes and acknowledgements. */
  storeWaitMs: number;
  ackMs: number;
  /** The input ended (or was stopped) and everything was written and acknowledged. */
  done: boolean;
}

interface BootPreparer { prepareBoots(boots: readonly BootSeen[]): Promise<void> }

/** Checkpoint format: the correlator snapshot and the hosts' health counters of one partition. */
const CHECKPOINT_FORMAT = 2;

export class Pipeline {
  readonly stats: PipelineStats = {
    messages: 0, replayedMessages: 0, batches: 0, events: 0, episodes: 0, revokeEpisodes: 0, findings: 0,
    findingsBySeverity: { CRITICAL: 0, WARNING: 0, INFO: 0 }, deadLettered: 0, deadLetterReasons: {}, acks: 0, checkpoints: 0,
    restored: 0, storeWaitMs: 0, ackMs: 0, done: false,
  };
  private readonly stages = new Map<number, PartitionStage>();
  private readonly now: () => number;
  private readonly log: Log;
  private ackChain: Promise<void> = Promise.resolve();
  private ackTimer: NodeJS.Timeout | undefined;
  private lastHealthMs: number;
  private stopped = false;
  /** Dead letters per (minute, partition, reason class) not yet written to the checkpoint store. */
  private deadLetterCounts = new Map<string, { timeMs: number; partition: number; reason: string; count: number }>();

  constructor(private readonly o: PipelineOptions) {
    this.now = o.now ?? Date.now;
    this.log = o.log ?? silentLog;
    this.lastHealthMs = this.now();
  }

  get lag(): number { return this.o.source.lag; }

  /** The partitions' correlators (embedded mode has one): for what stays open at the end (openLocks). */
  correlators(): Correlator[] { return [...this.stages.values()].map((st) => st.correlator); }

  /** Runs until the source ends (then the correlators finish: buffered events and open locks are judged) or the
   * signal aborts (then they stay open); in both cases everything is flushed and acknowledged. */
  async run(): Promise<PipelineStats> {
    const { source, signal } = this.o;
    const onAbort = () => { this.stopped = true; void source.stop(); };
    if (signal?.aborted) onAbort(); else signal?.addEventListener('abort', onAbort, { once: true });
    if (this.o.ackIntervalMs !== undefined) {
      this.ackTimer = setInterval(() => { this.acknowledge(false).catch((err) => this.fatal(err)); }, Math.max(50, this.o.ackIntervalMs));
    }
    try {
      await source.run({
        assign: (parts) => this.assign(parts),
        revoke: (parts) => { for (const p of parts) this.stages.delete(p); },
        deliver: (messages, partition) => this.deliver(messages, partition),
      });
      if (this.fatalError) throw this.fatalError;
      if (!this.stopped) {
        for (const st of this.stages.values()) {
          st.correlator.finish();
          await this.takeOutputs(st, []);
        }
      }
      await this.acknowledge(this.stopped);
      this.stats.done = true;
      return this.stats;
    } finally {
      if (this.ackTimer) clearInterval(this.ackTimer);
      signal?.removeEventListener('abort', onAbort);
      await source.close();
    }
  }

  private fatalError: unknown;

  private fatal(err: unknown): void {
    this.log.error(`pipeline failed: ${err instanceof Error ? err.message : String(err)}`);
    this.fatalError ??= err;
    void this.o.source.stop();
  }

  /** Where each new partition starts: its newest checkpoint (restored), else its earliest offset. */
  private async assign(parts: Assignment[]): Promise<Map<number, number>> {
    const starts = new Map<number, number>();
    const cps = this.o.checkpoints ? await this.o.checkpoints.latest(parts.map((a) => a.partition)) : new Map();
    for (const a of parts) {
      const cp = cps.get(a.partition);
      let restored: { correlator: Correlator; health: HostHealthTracker } | undefined;
      if (cp && cp.offset <= a.high) {
        try { restored = this.restore(cp.state); } catch (err) {
          this.log.warn(`partition ${a.partition}: checkpoint at ${cp.offset} unusable (${(err as Error).message}); replaying from ${a.low}`);
        }
      }
      const from = restored ? cp!.offset : a.low;
      if (restored) this.stats.restored++;
      const st = new PartitionStage(a.partition, from, Math.max(a.committed, from),
        restored?.correlator ?? new Correlator(this.o.correlator), restored?.health ?? new HostHealthTracker(this.now));
      if (restored) st.checkpointed = from;
      this.stages.set(a.partition, st);
      starts.set(a.partition, from);
      if (a.high > 0 || cp) this.log.info(`partition ${a.partition}: ${restored ? 'checkpoint' : 'replay'} from ${from}, outputs from ${st.resumeAt}, end ${a.high}`);
    }
    return starts;
  }

  private restore(state: string): { correlator: Correlator; health: HostHealthTracker } {
    const saved = JSON.parse(state) as { v: number; health: unknown; correlator: unknown };
    if (saved.v !== CHECKPOINT_FORMAT) throw new Error(`checkpoint format ${String(saved.v)}`);
    return { correlator: Correlator.restore(JSON.stringify(saved.correlator), this.o.correlator),
      health: HostHealthTracker.fromState(saved.health as never, this.now) };
  }

  private async deliver(messages: TransportMessage[], partition: number): Promise<void> {
    const st = this.stages.get(partition);
    if (!st) return; // revoked while the fetch was on its way
    const prepare = (this.o.store as Partial<BootPreparer>).prepareBoots?.bind(this.o.store);
    if (prepare) await prepare(st.bootsOf(messages)); // a store may resolve what the delivery needs at once
    st.busy = true;
    const w0 = performance.now();
    try {
      const found: { findings: Finding[]; producedAtMs: number }[] = [];
      for (const m of messages) {
        const r = st.handle(m);
        if (r.skipped) continue;
        if (r.replay) this.stats.replayedMessages++; else this.stats.messages++;
        if (r.deadLetter) { if (!r.replay) this.deadLetter(m, partition, r.deadLetter); continue; }
        if (r.replay) continue;
        this.stats.batches++;
        this.stats.events += st.scan.count;
        await this.o.store.writeScan(st.scan);
        const f = st.correlator.takeFindings();
        if (f.length > 0) found.push({ findings: f, producedAtMs: m.timestampMs ?? this.now() });
      }
      await this.takeOutputs(st, found);
      st.done = st.next;
      if (this.now() - this.lastHealthMs >= (this.o.healthIntervalMs ?? 10_000)) {
        this.lastHealthMs = this.now();
        await this.writeHealth();
      }
    } finally {
      st.busy = false;
      this.stats.storeWaitMs += performance.now() - w0;
    }
  }

  private deadLetter(m: TransportMessage, partition: number, why: DeadLetterReason): void {
    this.stats.deadLettered++;
    this.stats.deadLetterReasons[why.class] = (this.stats.deadLetterReasons[why.class] ?? 0) + 1;
    const minute = Math.floor(this.now() / 60_000) * 60_000;
    const k = `${minute}\u0000${partition}\u0000${why.class}`;
    const c = this.deadLetterCounts.get(k);
    if (c) c.count++; else this.deadLetterCounts.set(k, { timeMs: minute, partition, reason: why.class, count: 1 });
    this.log.warn(`dead letter: partition ${partition} offset ${m.offset ?? '?'}: ${why.text}`);
    this.o.publisher?.deadLetter(m, why.text);
  }

  private async takeOutputs(st: PartitionStage, found: { findings: Finding[]; producedAtMs: number }[]): Promise<void> {
    const episodes = st.correlator.takeEpisodes();
    const rest = st.correlator.takeFindings();
    const findings = found.length === 0 ? rest : [...found.flatMap((g) => g.findings), ...rest];
    this.stats.episodes += episodes.length;
    for (const e of episodes) if (e.revoke) this.stats.revokeEpisodes++;
    this.stats.findings += findings.length;
    for (const f of findings) {
      const s = SEVERITY[f.severity] ?? 'SEVERITY_UNSPECIFIED';
      this.stats.findingsBySeverity[s] = (this.stats.findingsBySeverity[s] ?? 0) + 1;
    }
    const writes: Promise<void>[] = [];
    if (episodes.length > 0) writes.push(this.o.store.writeEpisodes(episodes));
    if (findings.length > 0) { writes.push(this.o.store.writeFindings(findings)); this.o.publisher?.findings(findings); }
    await Promise.all(writes);
    for (const g of found) this.o.onFindings?.(g.findings, g.producedAtMs);
  }

  private async writeHealth(): Promise<void> {
    // each host's lag is its own partition's (a host's batches are all in one partition: key = hostname): the messages
    // after the last one its stage handled (a delivery in progress counts as read up to there)
    const rows = [...this.stages.entries()].flatMap(([p, st]) => st.health.rows(Math.max(0, this.o.source.endOf(p) - st.next)));
    if (rows.length > 0) await this.o.store.writeHostHealth(rows);
  }

  /** Flush everything handed to the store and the publisher, write due checkpoints, then acknowledge the offsets
   * they cover to the source. Serialised. */
  acknowledge(forceCheckpoint: boolean): Promise<void> {
    const run = this.ackChain.catch(() => {}).then(async () => {
      const t0 = performance.now();
      try { await this.doAcknowledge(forceCheckpoint); } finally { this.stats.ackMs += performance.now() - t0; }
    });
    this.ackChain = run;
    return run;
  }

  private async doAcknowledge(forceCheckpoint: boolean): Promise<void> {
    const now = this.now();
    // what is handed to the store now (a partition in the middle of a delivery acknowledges what it has: `done`)
    const marks = [...this.stages.entries()].map(([p, st]) => ({ p, st, offset: st.done }));
    // checkpoints now, at the offsets they belong to (nothing is delivered while this runs synchronously)
    const cpStore = this.o.checkpoints;
    const interval = this.o.checkpointIntervalMs ?? 10_000, every = this.o.checkpointMessages ?? 20_000;
    const due = !cpStore ? [] : [...this.stages.entries()].filter(([, st]) => !st.busy && st.next > st.checkpointed &&
      st.next >= st.resumeAt && (forceCheckpoint || now - st.checkpointedAt >= interval || st.sinceCheckpoint >= every));
    const cps = due.map(([p, st]) => ({ st, cp: { partition: p, offset: st.next,
      state: `{"v":${CHECKPOINT_FORMAT},"health":${JSON.stringify(st.health.toState())},"correlator":${st.correlator.snapshot()}}` } }));
    for (const { st } of cps) { st.checkpointedAt = now; st.sinceCheckpoint = 0; }
    await this.writeHealth();
    await this.o.store.flush();
    await this.o.publisher?.settled();
    // after the outputs before them are durable, before the offsets are acknowledged
    if (cpStore && this.deadLetterCounts.size > 0) {
      const rows = [...this.deadLetterCounts.values()];
      this.deadLetterCounts = new Map();
      await cpStore.writeDeadLetters(rows);
    }
    if (cpStore && cps.length > 0) {
      await cpStore.write(cps.map((c) => c.cp));
      for (const { st, cp } of cps) st.checkpointed = Math.max(st.checkpointed, cp.offset);
      this.stats.checkpoints += cps.length;
    }
    for (const { p, st, offset } of marks) {
      if (offset >= st.resumeAt && offset > st.acked) { await this.o.source.ack(p, offset); st.acked = offset; }
    }
    this.stats.acks++;
  }
}

const SEVERITY: Record<number, string> = { 1: 'INFO', 2: 'WARNING', 3: 'CRITICAL' };
