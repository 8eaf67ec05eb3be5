// Fleet correlator (DESIGN §2, §8): a Kafka consumer group over "revokescope.events"; one Correlator per
// partition (a host's batches all live in one partition, in order); outputs to the EventStore; findings also to
// "revokescope.findings"; unusable messages to "revokescope.dlq" with a `reason` header.
//
// Commit rule: an offset is committed only after everything derived from the messages before it is durable
// (store.flush(), findings and DLQ acknowledged). Correlator state spans messages (open episodes, mapping state
// that lives as long as the mapping), so a restart cannot begin at the committed offset with an empty
// correlator. Checkpoints (bookkeeping.ts): at most every `checkpointIntervalMs` / `checkpointMessages`, after
// the flush and before the commit, each partition's correlator snapshot is stored with the offset it belongs
// to. A newly assigned partition restores its newest checkpoint and replays from there (from its earliest
// retained offset when it has none) with outputs suppressed up to the committed offset (they are already
// stored), then processes normally. Ids are deterministic, so anything written twice around a crash replaces
// itself (ReplacingMergeTree).
//
// Throughput: a fetch (kafkajs eachBatch) is handled as a whole: every message decoded once, the correlator
// fed synchronously, raw events of the whole fetch handed to the store together, outputs taken once per
// fetch; partitions are handled concurrently (their store writes and fetches overlap).
import type { Consumer, EachBatchPayload, Kafka, Producer } from 'kafkajs';
import { Correlator, type CorrelatorOptions } from '../../core/correlator/index.js';
import { v1, type EventBatch, type Finding } from '../../core/model.js';
import type { EventStore, HostHealth } from '../../store/types.js';
import { FieldError } from '../../core/validate.js';
import { BatchScan, WireError } from '../../core/wire.js';
import { reasonClass, type Checkpoint, type ConsumerBookkeeping, type DlqCount } from './bookkeeping.js';
import { compressionType, ensureTopics, kafkaClient } from './client.js';
import { withDefaults, type KafkaSettings } from './config.js';

/** Each commit flushes the store, so this is also the insert cadence: 2 s, like the store's own maximum delay
 * (writer.ts), makes inserts twice as large as 1 s did at the cost of a replay window of up to 2 s after a crash. */
export const DEFAULT_COMMIT_INTERVAL_MS = 2_000;

export interface CorrelatorConsumerOptions extends Partial<KafkaSettings> {
  brokers: string[];
  store: EventStore;
  correlator?: Partial<CorrelatorOptions>;
  /** Commit (after a flush) at most this often. Default DEFAULT_COMMIT_INTERVAL_MS. */
  commitIntervalMs?: number;
  /** Stop once every assigned partition reached the end offsets seen when it was assigned; then the
   * correlators finish (end of input: buffered events and open locks are judged) and a final commit is made. */
  drain?: boolean;
  /** In drain mode, also stop after this long without any message. Default 10000 ms. */
  drainIdleMs?: number;
  /** Publish findings to the findings topic (default true). */
  publishFindings?: boolean;
  /** Create missing topics (default true). */
  createTopics?: boolean;
  log?: (line: string) => void;
  /** Checkpoint and DLQ-count tables (without: no checkpoints, every assignment replays from the earliest offset). */
  bookkeeping?: ConsumerBookkeeping;
  /** Checkpoint a partition at most this often (default 10000 ms) ... */
  checkpointIntervalMs?: number;
  /** ... or once it has taken this many messages since its last checkpoint (default 20000). */
  checkpointMessages?: number;
  /** Partitions handled concurrently (default 4). */
  concurrency?: number;
  /** Observes findings as they are emitted with the CreateTime of the message that completed them (latency). */
  onFindings?: (findings: Finding[], producedAtMs: number) => void;
}

export interface CorrelatorConsumerStats {
  messages: number;
  replayedMessages: number;
  batches: number;
  events: number;
  episodes: number;
  findings: number;
  dlq: number;
  commits: number;
  checkpoints: number;
  /** Partitions that started from a checkpoint. */
  restored: number;
  /** Wall time spent waiting for store writes (buffer full: an insert still running) and in commits. */
  storeWaitMs: number;
  commitMs: number;
  /** Sum over assigned partitions of (high watermark − next offset) at the last batch. */
  lag: number;
}

interface HostCounters {
  hostname: string; bootId: string; kernelRelease: string; collectorVersion: string; capabilities: string[];
  events: number; dropped: number; lost: number; nextSeq: number; lastTsNs: number; partition: number; dirty: boolean;
}

interface PartitionState {
  correlator: Correlator;
  /** Next offset to process. */
  next: number;
  /** Outputs and raw events of everything before this offset are handed to the store (commit bound). */
  done: number;
  /** A fetch of this partition is being handled (its state is between `done` and `next`). */
  busy: boolean;
  /** Below this offset outputs are already stored: replay only rebuilds correlator state. */
  resumeAt: number;
  /** Last offset committed (or found committed). */
  committed: number;
  /** Drain target: high watermark when assigned. */
  end: number;
  high: number;
  /** Seeks to `next` made since the last processed message (a gap that survives 3 is real: retention). */
  seeks: number;
  finished: boolean;
  /** Offset of the newest stored checkpoint (−1: none), when it was written and messages taken since. */
  checkpointed: number;
  checkpointedAt: number;
  sinceCheckpoint: number;
}

/** Host counters as they go into a checkpoint. */
type HostCheckpoint = Omit<HostCounters, 'dirty'>;

const CAP_NAMES = v1.Capability as unknown as Record<number, string>;

async function retrying<T>(fn: () => Promise<T>, tries = 20): Promise<T> {
  for (let i = 1; ; i++) {
    try { return await fn(); } catch (err) {
      if (i >= tries) throw err;
      await new Promise((r) => setTimeout(r, Math.min(2000, 100 * i)));
    }
  }
}

export class CorrelatorConsumer {
  readonly stats: CorrelatorConsumerStats = { messages: 0, replayedMessages: 0, batches: 0, events: 0, episodes: 0,
    findings: 0, dlq: 0, commits: 0, checkpoints: 0, restored: 0, storeWaitMs: 0, commitMs: 0, lag: 0 };
  readonly settings: KafkaSettings;
  private readonly kafka: Kafka;
  private consumer: Consumer | undefined;
  private producer: Producer | undefined;
  private readonly parts = new Map<number, PartitionState>();
  /** The wire reader that accepts or rejects each message (services/core/wire.ts). */
  private readonly scan = new BatchScan();
  private readonly hosts = new Map<string, HostCounters>();
  private sends: Promise<unknown>[] = [];
  private dlqCounts = new Map<string, DlqCount>();
  private lastCommit = Date.now();
  private lastMessageAt = Date.now();
  private commitChain: Promise<void> = Promise.resolve();
  private commitPending = false;
  private stopping = false;
  private done!: Promise<void>;
  private resolveDone!: () => void;
  private rejectDone!: (e: unknown) => void;
  private drainTimer: NodeJS.Timeout | undefined;
  private commitTimer: NodeJS.Timeout | undefined;
  private readonly log: (line: string) => void;

  constructor(readonly opts: CorrelatorConsumerOptions) {
    this.settings = withDefaults(opts);
    this.kafka = kafkaClient(this.settings);
    this.log = opts.log ?? (() => {});
  }

  /** Join the group and start consuming; resolves once running. `finished` resolves when it stops. */
  async start(): Promise<void> {
    const s = this.settings;
    const admin = this.kafka.admin();
    await admin.connect();
    try { if (this.opts.createTopics ?? true) await ensureTopics(admin, s); } finally { await admin.disconnect(); }
    this.producer = this.kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false });
    await this.producer.connect();
    this.consumer = this.kafka.consumer({ groupId: s.groupId, allowAutoTopicCreation: false, sessionTimeout: 30_000,
      heartbeatInterval: 3_000, maxBytesPerPartition: 4 << 20, retry: { retries: 10 } });
    await this.consumer.connect();
    await this.consumer.subscribe({ topic: s.eventsTopic, fromBeginning: true });
    this.done = new Promise<void>((res, rej) => { this.resolveDone = res; this.rejectDone = rej; });
    this.consumer.on(this.consumer.events.GROUP_JOIN, (e) => {
      const assigned = (e.payload.memberAssignment[s.eventsTopic] ?? []) as number[];
      this.onAssigned(assigned).catch((err) => this.fail(err));
    });
    this.consumer.on(this.consumer.events.CRASH, (e) => {
      if (!e.payload.restart) this.fail(e.payload.error);
    });
    await this.consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: this.opts.concurrency ?? 4,
      eachBatch: (p) => this.eachBatch(p),
    });
    if (this.opts.drain) {
      this.drainTimer = setInterval(() => { void this.checkDrained(); }, 200);
    }
    this.commitTimer = setInterval(() => this.maybeCommit(), Math.max(50, Math.min(1000, this.opts.commitIntervalMs ?? DEFAULT_COMMIT_INTERVAL_MS)));
  }

  /** Partitions this member holds now. */
  get assignedPartitions(): number { return this.parts.size; }

  /** Resolves when the consumer stopped (drain complete or `stop()`); rejects on a fatal error. */
  get finished(): Promise<void> { return this.done; }

  private fail(err: unknown): void {
    this.log(`correlator consumer failed: ${err instanceof Error ? err.message : String(err)}`);
    void this.shutdown().finally(() => this.rejectDone(err));
  }

  private async onAssigned(assigned: number[]): Promise<void> {
    const s = this.settings;
    this.lastMessageAt = Date.now(); // drain idleness counts from the assignment
    const admin = this.kafka.admin();
    await admin.connect();
    try {
      // the group coordinator may still be loading or moving: retry (kafkajs' admin does not for these)
      const [committed, offsets] = await retrying(() => Promise.all([
        admin.fetchOffsets({ groupId: s.groupId, topics: [s.eventsTopic] }),
        admin.fetchTopicOffsets(s.eventsTopic),
      ]));
      const committedBy = new Map((committed[0]?.partitions ?? []).map((p) => [p.partition, Number(p.offset)]));
      const wm = new Map(offsets.map((o) => [o.partition, { low: Number(o.low), high: Number(o.high) }]));
      for (const p of [...this.parts.keys()]) if (!assigned.includes(p)) this.parts.delete(p);
      const fresh = assigned.filter((p) => !this.parts.has(p));
      const cps = this.opts.bookkeeping && fresh.length > 0
        ? await retrying(() => this.opts.bookkeeping!.latest(s.groupId, s.eventsTopic, fresh), 5) : new Map<number, Checkpoint>();
      for (const p of assigned) {
        const w = wm.get(p) ?? { low: 0, high: 0 };
        const c = committedBy.get(p) ?? -1;
        const prev = this.parts.get(p);
        if (prev) {
          // kept across the rebalance: continue where this correlator is (outputs before `next` may still sit
          // in the store's buffer; they are flushed before the next commit)
          prev.seeks = 0;
          prev.end = Math.max(prev.end, w.high);
          this.consumer!.seek({ topic: s.eventsTopic, partition: p, offset: String(prev.next) });
          continue;
        }
        const cp = cps.get(p);
        let correlator: Correlator | undefined;
        if (cp && cp.offset <= w.high) {
          try { correlator = this.restoreCheckpoint(cp); } catch (err) {
            this.log(`partition ${p}: checkpoint at ${cp.offset} unusable (${(err as Error).message}); replaying from ${w.low}`);
          }
        }
        const from = correlator ? cp!.offset : w.low;
        if (correlator) this.stats.restored++;
        this.parts.set(p, {
          correlator: correlator ?? new Correlator(this.opts.correlator), next: from, done: from, busy: false, resumeAt: Math.max(c, from), committed: c,
          end: w.high, high: w.high, seeks: 0, finished: false,
          checkpointed: correlator ? cp!.offset : -1, checkpointedAt: Date.now(), sinceCheckpoint: 0,
        });
        // kafkajs would start at the committed offset; the correlator needs the partition from its checkpoint
        // (or its start)
        this.consumer!.seek({ topic: s.eventsTopic, partition: p, offset: String(from) });
        this.log(`partition ${p}: ${correlator ? 'checkpoint' : 'replay'} from ${from}, outputs from ${Math.max(c, from)}, end ${w.high}`);
      }
    } finally { await admin.disconnect(); }
  }

  private readonly running = new Set<Promise<void>>();

  private eachBatch(payload: EachBatchPayload): Promise<void> {
    const run = this.handleBatch(payload);
    const settled = run.catch(() => {}).finally(() => this.running.delete(settled));
    this.running.add(settled);
    return run;
  }

  /** Stop taking messages and wait for the batch being processed. */
  private async quiesce(): Promise<void> {
    this.stopping = true;
    if (this.drainTimer) clearInterval(this.drainTimer);
    if (this.commitTimer) clearInterval(this.commitTimer);
    const s = this.settings;
    try { this.consumer?.pause([{ topic: s.eventsTopic }]); } catch { /* not running */ }
    while (this.running.size > 0) await Promise.all(this.running);
  }

  private async handleBatch({ batch, resolveOffset, heartbeat, isRunning, isStale }: EachBatchPayload): Promise<void> {
    const p = batch.partition;
    let st = this.parts.get(p);
    if (!st) {
      // GROUP_JOIN handling races the first fetch: wait for it
      for (let i = 0; i < 100 && !st; i++) { await new Promise((r) => setTimeout(r, 50)); st = this.parts.get(p); }
      if (!st) return;
    }
    if (batch.messages.length === 0) return;
    const first = Number(batch.messages[0].offset);
    if (first > st.next) {
      if (st.seeks < 3) {
        // a fetch from before our seek (kafkajs started at the committed offset): go back to `next`
        st.seeks++;
        this.consumer!.seek({ topic: batch.topic, partition: p, offset: String(st.next) });
        return;
      }
      this.log(`partition ${p}: offsets ${st.next}..${first - 1} are gone (retention); continuing at ${first}`);
    }
    st.seeks = 0;
    st.high = Number(batch.highWatermark);
    st.busy = true;
    try { await this.handleMessages(st, p, batch.messages, resolveOffset, heartbeat, isRunning, isStale); } finally { st.busy = false; }
    this.stats.lag = [...this.parts.values()].reduce((k, x) => k + Math.max(0, x.high - x.next), 0);
    this.maybeCommit();
  }

  /** A commit in the background when one is due: fetches go on while the store flushes (the commit covers only
   * what was handed to the store when it began); a failure stops the consumer, the next owner resumes from the
   * last commit. Called after every fetch and by a timer (the last fetch before a quiet spell gets committed). */
  private maybeCommit(): void {
    if (this.stopping || this.commitPending || Date.now() - this.lastCommit < (this.opts.commitIntervalMs ?? DEFAULT_COMMIT_INTERVAL_MS)) return;
    const pending = this.dlqCounts.size > 0 || this.sends.length > 0 ||
      [...this.parts.values()].some((st) => st.done > st.committed && st.done >= st.resumeAt);
    if (!pending) return;
    this.commitPending = true;
    this.commit().catch((err) => this.fail(err)).finally(() => { this.commitPending = false; });
  }

  private async handleMessages(st: PartitionState, p: number, messages: EachBatchPayload['batch']['messages'],
    resolveOffset: (o: string) => void, heartbeat: () => Promise<void>, isRunning: () => boolean, isStale: () => boolean): Promise<void> {
    const first = Number(messages[0].offset);
    const fresh: EventBatch[] = [];
    // findings with the CreateTime of the message that completed each (latency), written once per fetch
    const found: { findings: Finding[]; producedAtMs: number }[] = [];
    let n = 0;
    for (const m of messages) {
      if (!isRunning() || isStale() || this.stopping) break;
      const off = Number(m.offset);
      if (off < st.next) continue; // already processed (a re-fetch after seek)
      const replay = off < st.resumeAt;
      const b = this.decodeMessage(p, off, m.key, m.value, replay);
      if (b) {
        this.countHost(b, p);
        st.correlator.ingestBytes(m.value!); // what it buffers stays bytes (wire.ts); b dies young
        if (replay) {
          // outputs before resumeAt are stored already: drop them before any live message adds its own
          st.correlator.takeEpisodes(); st.correlator.takeFindings();
        } else {
          const f = st.correlator.takeFindings();
          if (f.length > 0) found.push({ findings: f, producedAtMs: Number(m.timestamp) });
          fresh.push(b);
          this.stats.batches++;
          this.stats.events += b.events?.length ?? 0;
        }
      }
      st.next = off + 1;
      st.sinceCheckpoint++;
      if ((++n & 1023) === 0) await heartbeat();
    }
    if (st.next > first) resolveOffset(String(st.next - 1));
    if (n === 0) return;
    this.lastMessageAt = Date.now();
    // raw events of the whole fetch, then its outputs; the store buffers them (flushed before a commit)
    const w0 = performance.now();
    if (fresh.length > 0) await Promise.all(fresh.map((b) => this.opts.store.writeBatch(b)));
    await this.takeOutputs(st, false, found);
    this.stats.storeWaitMs += performance.now() - w0;
    st.done = st.next;
  }

  /** Decode and check one message; a bad one goes to the DLQ (outside replay) and yields undefined. */
  private decodeMessage(partition: number, offset: number, keyBuf: Buffer | null, value: Buffer | null,
    replay: boolean): EventBatch | undefined {
    if (replay) this.stats.replayedMessages++; else this.stats.messages++;
    const key = keyBuf ? keyBuf.toString('utf8') : '';
    let batch: EventBatch;
    try {
      if (!value || value.length === 0) throw new WireError('empty message');
      // The wire reader decides (the same as analyze and the embedded pipeline); objects only for accepted bytes.
      this.scan.read(value);
      batch = v1.EventBatch.decode(value);
    } catch (err) {
      if (!replay) {
        const reason = err instanceof FieldError ? `invalid batch: ${err.message}` : `corrupt protobuf: ${(err as Error).message}`;
        this.deadLetter(partition, offset, keyBuf, value, reason);
      }
      return undefined;
    }
    try {
      if (key !== batch.host?.hostname) {
        throw new Error(`message key '${key}' is not host.hostname '${batch.host?.hostname ?? ''}' (per-host order needs key = hostname)`);
      }
    } catch (err) {
      if (!replay) this.deadLetter(partition, offset, keyBuf, value, `invalid batch: ${(err as Error).message}`);
      return undefined;
    }
    return batch;
  }

  private restoreCheckpoint(cp: Checkpoint): Correlator {
    const saved = JSON.parse(cp.state) as { v: number; hosts: HostCheckpoint[]; correlator: unknown };
    if (saved.v !== 1) throw new Error(`checkpoint format ${saved.v}`);
    const correlator = Correlator.restore(JSON.stringify(saved.correlator), this.opts.correlator);
    for (const h of saved.hosts) this.hosts.set(`${h.hostname}\u0000${h.bootId}`, { ...h, dirty: false });
    return correlator;
  }

  /** Correlator state + the counters of the hosts in this partition, at offset `st.next`. */
  private checkpointState(p: number, st: PartitionState): string {
    const hosts: HostCheckpoint[] = [];
    for (const h of this.hosts.values()) {
      if (h.partition !== p) continue;
      const { dirty: _dirty, ...rest } = h;
      hosts.push(rest);
    }
    // the snapshot is JSON already: spliced in, not parsed and re-encoded
    return `{"v":1,"hosts":${JSON.stringify(hosts)},"correlator":${st.correlator.snapshot()}}`;
  }

  private async takeOutputs(st: PartitionState, replay: boolean,
    found: { findings: Finding[]; producedAtMs: number }[] = []): Promise<void> {
    const episodes = st.correlator.takeEpisodes();
    const rest = st.correlator.takeFindings();
    if (replay) return;
    const findings = found.length === 0 ? rest : [...found.flatMap((g) => g.findings), ...rest];
    const writes: Promise<void>[] = [];
    if (episodes.length > 0) { this.stats.episodes += episodes.length; writes.push(this.opts.store.writeEpisodes(episodes)); }
    if (findings.length > 0) {
      this.stats.findings += findings.length;
      writes.push(this.opts.store.writeFindings(findings));
      if (this.opts.publishFindings ?? true) this.publishFindings(findings);
    }
    await Promise.all(writes);
    for (const g of found) this.opts.onFindings?.(g.findings, g.producedAtMs);
  }

  private track(p: Promise<unknown>): void {
    // awaited at the next commit; a failure there fails the commit instead of an unhandled rejection
    const settled = p.then(() => undefined, (err: unknown) => err);
    this.sends.push(settled);
  }

  private publishFindings(findings: Finding[]): void {
    this.track(this.producer!.send({
      topic: this.settings.findingsTopic, acks: -1, compression: compressionType(this.settings.compression),
      messages: findings.map((f) => ({ key: f.hostname, value: Buffer.from(v1.Finding.encode(f).finish()) })),
    }));
  }

  private deadLetter(partition: number, offset: number, key: Buffer | null, value: Buffer | null, reason: string): void {
    this.stats.dlq++;
    const minute = Math.floor(Date.now() / 60_000) * 60_000;
    const why = reasonClass(reason);
    const k = `${minute}\u0000${partition}\u0000${why}`;
    const c = this.dlqCounts.get(k);
    if (c) c.count++; else this.dlqCounts.set(k, { timeMs: minute, topic: this.settings.eventsTopic, partition, reason: why, count: 1 });
    this.log(`dlq: ${this.settings.eventsTopic}[${partition}]@${offset}: ${reason}`);
    this.track(this.producer!.send({
      topic: this.settings.dlqTopic, acks: -1,
      messages: [{ key, value: value ?? Buffer.alloc(0), headers: {
        reason: reason.slice(0, 1000), 'source-topic': this.settings.eventsTopic, 'source-partition': String(partition),
        'source-offset': String(offset),
      } }],
    }));
  }

  private countHost(batch: EventBatch, partition: number): void {
    const h = batch.host!;
    const key = `${h.hostname}\u0000${h.bootId}`;
    let c = this.hosts.get(key);
    if (!c) {
      c = { hostname: h.hostname ?? '', bootId: h.bootId ?? '', kernelRelease: h.kernelRelease ?? '',
        collectorVersion: h.collectorVersion ?? '', capabilities: (h.capabilities ?? []).map((x) => CAP_NAMES[x] ?? String(x)),
        events: 0, dropped: 0, lost: 0, nextSeq: Number(batch.firstSeq ?? 0), lastTsNs: 0, partition, dirty: false };
      this.hosts.set(key, c);
    }
    const n = batch.events?.length ?? 0;
    const first = Number(batch.firstSeq ?? 0);
    const dropped = Number(batch.dropped ?? 0);
    c.events += n;
    c.dropped += dropped;
    c.lost += dropped + Math.max(0, first - c.nextSeq); // loss the collector knows + seq gaps
    c.nextSeq = Math.max(c.nextSeq, first + n);
    for (const e of batch.events ?? []) if ((e.tsNs ?? 0) > c.lastTsNs) c.lastTsNs = Number(e.tsNs);
    c.partition = partition;
    c.dirty = true;
  }

  private healthRows(): HostHealth[] {
    const now = Date.now();
    const rows: HostHealth[] = [];
    for (const c of this.hosts.values()) {
      if (!c.dirty) continue;
      c.dirty = false;
      const st = this.parts.get(c.partition);
      rows.push({ hostname: c.hostname, bootId: c.bootId, kernelRelease: c.kernelRelease, collectorVersion: c.collectorVersion,
        capabilities: c.capabilities, observedAtMs: now, events: c.events, dropped: c.dropped, lost: c.lost,
        lag: st ? Math.max(0, st.high - st.next) : 0, lastTsNs: c.lastTsNs });
    }
    return rows;
  }

  /** Flush the store and the producers, then commit what they cover. Serialised. */
  commit(forceCheckpoint = false): Promise<void> {
    // after the previous one, whether it failed or not (a failure was reported to its caller)
    const run = this.commitChain.catch(() => {}).then(async () => {
      const t0 = performance.now();
      try { await this.doCommit(forceCheckpoint); } finally { this.stats.commitMs += performance.now() - t0; }
    });
    this.commitChain = run;
    return run;
  }

  private async doCommit(forceCheckpoint = false): Promise<void> {
    const now = Date.now();
    this.lastCommit = now;
    // a partition in the middle of a fetch commits what it has handed to the store (`done`)
    const targets = [...this.parts.entries()].filter(([, st]) => st.done > st.committed && st.done >= st.resumeAt)
      .map(([p, st]) => ({ p, st, offset: st.done }));
    // snapshots now, at the offsets committed below (no message is processed while this runs synchronously)
    const bk = this.opts.bookkeeping;
    const interval = this.opts.checkpointIntervalMs ?? 10_000;
    const every = this.opts.checkpointMessages ?? 20_000;
    const due = !bk ? [] : [...this.parts.entries()].filter(([, st]) => !st.finished && !st.busy && st.next > st.checkpointed &&
      st.next >= st.resumeAt && (forceCheckpoint || now - st.checkpointedAt >= interval || st.sinceCheckpoint >= every));
    const cps = due.map(([p, st]) => ({ st, cp: { partition: p, offset: st.next, state: this.checkpointState(p, st) } }));
    for (const { st } of cps) { st.checkpointedAt = now; st.sinceCheckpoint = 0; }
    const health = this.healthRows();
    if (health.length > 0) await this.opts.store.writeHostHealth(health);
    await this.opts.store.flush();
    const sends = this.sends; this.sends = [];
    const failed = (await Promise.all(sends)).find((r) => r !== undefined);
    if (failed) throw failed;
    // after the outputs before them are durable, before the offsets are committed
    if (bk && this.dlqCounts.size > 0) {
      const rows = [...this.dlqCounts.values()]; this.dlqCounts.clear();
      await bk.writeDlq(rows);
    }
    if (bk && cps.length > 0) {
      await bk.write(this.settings.groupId, this.settings.eventsTopic, cps.map((c) => c.cp));
      for (const { st, cp } of cps) st.checkpointed = Math.max(st.checkpointed, cp.offset);
      this.stats.checkpoints += cps.length;
    }
    if (targets.length === 0 || !this.consumer) return;
    try {
      await this.consumer.commitOffsets(targets.map(({ p, offset }) => ({ topic: this.settings.eventsTopic, partition: p, offset: String(offset) })));
      for (const t of targets) t.st.committed = Math.max(t.st.committed, t.offset);
      this.stats.commits++;
    } catch (err) {
      // lost the partition in a rebalance: the new owner replays from the last commit (idempotent)
      this.log(`commit failed: ${(err as Error).message}`);
    }
  }

  private async checkDrained(): Promise<void> {
    if (this.stopping || this.parts.size === 0) {
      if (!this.stopping && Date.now() - this.lastMessageAt > (this.opts.drainIdleMs ?? 10_000)) await this.finishAndStop();
      return;
    }
    const caughtUp = [...this.parts.values()].every((st) => st.next >= st.end);
    const idle = Date.now() - this.lastMessageAt > (this.opts.drainIdleMs ?? 10_000);
    if (caughtUp || idle) await this.finishAndStop();
  }

  private async finishAndStop(): Promise<void> {
    if (this.stopping) return;
    await this.quiesce();
    try {
      for (const st of this.parts.values()) {
        if (st.finished) continue;
        st.finished = true;
        st.correlator.finish();
        await this.takeOutputs(st, false);
      }
      await this.commit();
      await this.consumer?.stop();
      await this.shutdown();
      this.resolveDone();
    } catch (err) {
      this.rejectDone(err);
    }
  }

  private async shutdown(): Promise<void> {
    if (this.drainTimer) clearInterval(this.drainTimer);
    if (this.commitTimer) clearInterval(this.commitTimer);
    await this.consumer?.disconnect().catch(() => {});
    await this.producer?.disconnect().catch(() => {});
  }

  /** Stop: final flush and commit of what was processed (correlators are not finished: their state stays
   * open, and the next owner rebuilds it by replay). */
  async stop(): Promise<void> {
    if (this.stopping) return;
    await this.quiesce();
    await this.commit(true).catch((err) => this.log(`final commit failed: ${(err as Error).message}`));
    await this.consumer?.stop();
    await this.shutdown();
    this.resolveDone();
  }
}

/** Run the fleet correlator until drained (opts.drain) or until `signal` aborts. */
export async function runCorrelatorConsumer(opts: CorrelatorConsumerOptions & { signal?: AbortSignal }): Promise<CorrelatorConsumerStats> {
  const c = new CorrelatorConsumer(opts);
  await c.start();
  const onAbort = () => { void c.stop(); };
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    await c.finished;
  } finally {
    opts.signal?.removeEventListener('abort', onAbort);
  }
  return c.stats;
}
