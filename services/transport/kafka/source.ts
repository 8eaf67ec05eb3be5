// Kafka as an EventSource (fleet mode): a consumer-group member of "revokescope.events" that hands each fetch of a
// partition to the pipeline, starts each assigned partition where the pipeline says (a checkpoint's offset, not the
// committed one), and commits only offsets the pipeline acknowledged as durable (transport/types.ts). In drain
// mode the input ends when every assigned partition reached the end it had when assigned.
import type { Consumer, EachBatchPayload, Kafka } from 'kafkajs';
import { silentLog, type Log } from '../../lib/log.js';
import { retry } from '../../lib/retry.js';
import type { EventSource, SourceHandler, TransportMessage } from '../types.js';
import { ensureTopics, kafkaClient } from './client.js';
import { withDefaults, type KafkaSettings } from './config.js';

export interface KafkaSourceOptions extends Partial<KafkaSettings> {
  brokers: string[];
  /** End when every assigned partition reached its end offset as seen when assigned. */
  drain?: boolean;
  /** Drain: with no partition assigned for this long, end (an empty topic or group); with partitions assigned and
   * messages left unread, this long without a message is a stall: run() rejects. Default 10000 ms. */
  drainIdleMs?: number;
  /** Partitions handled concurrently (default 4). */
  concurrency?: number;
  /** Create missing topics (default true). */
  createTopics?: boolean;
  log?: Log;
}

interface PartitionCursor {
  /** Next offset to deliver. */
  next: number;
  /** Drain target: high watermark when assigned. */
  end: number;
  high: number;
  /** Acknowledged (durable downstream) and committed offsets. */
  acked: number;
  committed: number;
  /** Seeks to `next` made since the last delivery (a gap that survives 3 is real: retention). */
  seeks: number;
}

export class KafkaEventSource implements EventSource {
  readonly settings: KafkaSettings;
  private readonly kafka: Kafka;
  private consumer: Consumer | undefined;
  private handler: SourceHandler | undefined;
  private readonly parts = new Map<number, PartitionCursor>();
  private readonly running = new Set<Promise<void>>();
  private lastMessageAt = Date.now();
  private stopping = false;
  private ended!: () => void;
  private failed!: (e: unknown) => void;
  private drainTimer: NodeJS.Timeout | undefined;
  private commitChain: Promise<void> = Promise.resolve();
  private readonly log: Log;

  constructor(private readonly opts: KafkaSourceOptions) {
    this.settings = withDefaults(opts);
    this.kafka = kafkaClient(this.settings);
    this.log = opts.log ?? silentLog;
  }

  get lag(): number {
    let n = 0;
    for (const p of this.parts.values()) n += Math.max(0, p.high - p.next);
    return n;
  }

  endOf(partition: number): number { return this.parts.get(partition)?.high ?? 0; }

  get assignedPartitions(): number { return this.parts.size; }

  async run(handler: SourceHandler): Promise<void> {
    this.handler = handler;
    const s = this.settings;
    const admin = this.kafka.admin();
    await admin.connect();
    try { if (this.opts.createTopics ?? true) await ensureTopics(admin, s); } finally { await admin.disconnect(); }
    const done = new Promise<void>((res, rej) => { this.ended = res; this.failed = rej; });
    this.consumer = this.kafka.consumer({ groupId: s.groupId, allowAutoTopicCreation: false, sessionTimeout: 30_000,
      heartbeatInterval: 3_000, maxBytesPerPartition: 4 << 20, retry: { retries: 10 } });
    await this.consumer.connect();
    await this.consumer.subscribe({ topic: s.eventsTopic, fromBeginning: true });
    this.consumer.on(this.consumer.events.GROUP_JOIN, (e) => {
      const assigned = (e.payload.memberAssignment[s.eventsTopic] ?? []) as number[];
      this.onAssigned(assigned).catch((err) => this.fail(err));
    });
    this.consumer.on(this.consumer.events.CRASH, (e) => { if (!e.payload.restart) this.fail(e.payload.error); });
    await this.consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: this.opts.concurrency ?? 4,
      eachBatch: (p) => this.eachBatch(p),
    });
    if (this.opts.drain) this.drainTimer = setInterval(() => this.checkDrained(), 200);
    return done;
  }

  private fail(err: unknown): void {
    this.log.error(`kafka source failed: ${err instanceof Error ? err.message : String(err)}`);
    void this.quiesce().finally(() => this.failed(err));
  }

  private async onAssigned(assigned: number[]): Promise<void> {
    const s = this.settings;
    this.lastMessageAt = Date.now(); // drain idleness counts from the assignment
    const admin = this.kafka.admin();
    // a rebalance while the broker is away (it restarts) waits for it: an outage is backpressure, not a failure
    const patiently = { tries: Infinity, baseMs: 250, maxMs: 5_000, retriable: () => !this.stopping };
    await retry(() => admin.connect(), patiently);
    try {
      // the group coordinator may still be loading or moving: retry (kafkajs' admin does not for these)
      const [committed, offsets] = await retry(() => Promise.all([
        admin.fetchOffsets({ groupId: s.groupId, topics: [s.eventsTopic] }),
        admin.fetchTopicOffsets(s.eventsTopic),
      ]), patiently);
      const committedBy = new Map((committed[0]?.partitions ?? []).map((p) => [p.partition, Number(p.offset)]));
      const wm = new Map(offsets.map((o) => [o.partition, { low: Number(o.low), high: Number(o.high) }]));
      const gone = [...this.parts.keys()].filter((p) => !assigned.includes(p));
      for (const p of gone) this.parts.delete(p);
      if (gone.length > 0) this.handler!.revoke?.(gone);
      const fresh = assigned.filter((p) => !this.parts.has(p));
      for (const p of assigned) {
        const prev = this.parts.get(p);
        if (!prev) continue;
        // kept across the rebalance: continue where the pipeline is
        prev.seeks = 0;
        prev.end = Math.max(prev.end, wm.get(p)?.high ?? 0);
        this.consumer!.seek({ topic: s.eventsTopic, partition: p, offset: String(prev.next) });
      }
      if (fresh.length === 0) return;
      const starts = await this.handler!.assign(fresh.map((p) => {
        const w = wm.get(p) ?? { low: 0, high: 0 };
        return { partition: p, committed: committedBy.get(p) ?? -1, low: w.low, high: w.high };
      }));
      for (const p of fresh) {
        const w = wm.get(p) ?? { low: 0, high: 0 };
        const from = starts.get(p) ?? w.low;
        const c = committedBy.get(p) ?? -1;
        this.parts.set(p, { next: from, end: w.high, high: w.high, acked: c, committed: c, seeks: 0 });
        // kafkajs would start at the committed offset; the pipeline needs the partition from its start
        this.consumer!.seek({ topic: s.eventsTopic, partition: p, offset: String(from) });
      }
    } finally { await admin.disconnect(); }
  }

  private eachBatch(payload: EachBatchPayload): Promise<void> {
    const run = this.handleBatch(payload);
    const settled = run.catch(() => {}).finally(() => this.running.delete(settled));
    this.running.add(settled);
    return run;
  }

  private async handleBatch({ batch, resolveOffset, heartbeat, isRunning, isStale }: EachBatchPayload): Promise<void> {
    const p = batch.partition;
    let cur = this.parts.get(p);
    if (!cur) {
      // GROUP_JOIN handling races the first fetch: wait for it
      for (let i = 0; i < 100 && !cur; i++) { await new Promise((r) => setTimeout(r, 50)); cur = this.parts.get(p); }
      if (!cur) return;
    }
    if (batch.messages.length === 0 || this.stopping) return;
    const first = Number(batch.messages[0]!.offset);
    if (first > cur.next) {
      if (cur.seeks < 3) {
        // a fetch from before our seek (kafkajs started at the committed offset): go back to `next`
        cur.seeks++;
        this.consumer!.seek({ topic: batch.topic, partition: p, offset: String(cur.next) });
        return;
      }
      this.log.warn(`partition ${p}: offsets ${cur.next}..${first - 1} are gone (retention); continuing at ${first}`);
    }
    cur.seeks = 0;
    cur.high = Number(batch.highWatermark);
    const out: TransportMessage[] = [];
    for (const m of batch.messages) {
      const off = Number(m.offset);
      if (off < cur.next) continue; // already delivered (a re-fetch after seek)
      out.push({ key: m.key ? m.key.toString('utf8') : '', value: m.value ?? new Uint8Array(0), offset: m.offset, partition: p,
        timestampMs: Number(m.timestamp) });
    }
    if (out.length === 0) return;
    // large fetches in slices, so the group heartbeat keeps up and a stop takes effect between slices
    for (let i = 0; i < out.length; i += 1024) {
      if (!isRunning() || isStale() || this.stopping) break;
      const slice = out.slice(i, i + 1024);
      await this.handler!.deliver(slice, p);
      const last = Number(slice[slice.length - 1]!.offset);
      cur.next = last + 1;
      resolveOffset(String(last));
      this.lastMessageAt = Date.now();
      await heartbeat();
    }
  }

  /** Commit what the pipeline acknowledged (serialised; a failure is logged: the next owner of the partition
   * resumes from the last commit, and ids make the replay idempotent). */
  ack(partition: number, offset: number): Promise<void> {
    const cur = this.parts.get(partition);
    if (!cur || offset <= cur.acked) return this.commitChain;
    cur.acked = offset;
    const run = this.commitChain.then(async () => {
      if (!this.consumer || cur.acked <= cur.committed) return;
      const target = cur.acked;
      try {
        await this.consumer.commitOffsets([{ topic: this.settings.eventsTopic, partition, offset: String(target) }]);
        cur.committed = Math.max(cur.committed, target);
      } catch (err) {
        // lost the partition in a rebalance: the new owner replays from the last commit (idempotent)
        this.log.warn(`commit of partition ${partition} at ${target} failed: ${(err as Error).message}`);
      }
    });
    this.commitChain = run;
    return run;
  }

  /** Drain: done when every assigned partition reached its end; idle with unread messages is a stall. */
  private checkDrained(): void {
    if (this.stopping) return;
    const idle = Date.now() - this.lastMessageAt > (this.opts.drainIdleMs ?? 10_000);
    if (this.parts.size === 0) {
      if (idle) void this.quiesce().then(() => this.ended());
      return;
    }
    const unread = [...this.parts.values()].reduce((n, c) => n + Math.max(0, c.end - c.next), 0);
    if (unread === 0) { void this.quiesce().then(() => this.ended()); return; }
    if (idle) this.fail(new Error(`drain stalled: ${unread} messages unread after ${this.opts.drainIdleMs ?? 10_000} ms without progress`));
  }

  /** Stop taking messages and wait for the deliveries in progress. */
  private async quiesce(): Promise<void> {
    this.stopping = true;
    if (this.drainTimer) clearInterval(this.drainTimer);
    try { this.consumer?.pause([{ topic: this.settings.eventsTopic }]); } catch { /* not running */ }
    while (this.running.size > 0) await Promise.all(this.running);
  }

  async stop(): Promise<void> {
    if (this.stopping) return;
    await this.quiesce();
    this.ended();
  }

  async close(): Promise<void> {
    await this.quiesce();
    await this.commitChain.catch(() => {});
    await this.consumer?.stop().catch(() => {});
    await this.consumer?.disconnect().catch(() => {});
  }
}
