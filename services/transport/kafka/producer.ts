// Collector side of the fleet transport (DESIGN §2, §7): EventBatch bytes → Kafka topic "revokescope.events",
// key = hostname so one host's batches stay in one partition, in order. Idempotent producer, acks=all, one
// request in flight (order), zstd. kafkajs has no linger or byte batching of its own: `send` calls are
// coalesced here into requests of up to `batchBytes`, waiting at most `lingerMs` for more.
import type { Producer } from 'kafkajs';
import type { EventSink, TransportMessage } from '../types.js';
import { compressionType, ensureTopics, kafkaClient } from './client.js';
import { withDefaults, type KafkaSettings } from './config.js';

export interface KafkaSinkOptions extends Partial<KafkaSettings> {
  brokers: string[];
  /** Close a request at this many value+key bytes. Default 1 MiB. */
  batchBytes?: number;
  /** Wait this long for more messages before sending a non-full request. Default 5 ms. */
  lingerMs?: number;
  /** `send` awaits while this many bytes are queued or in flight (backpressure). Default 32 MiB. */
  maxBufferedBytes?: number;
  /** Create missing topics with `partitions` (default true). */
  createTopics?: boolean;
  /** Topic to produce to (default settings.eventsTopic). */
  topic?: string;
}

interface Pending {
  messages: { key: string; value: Buffer }[];
  bytes: number;
  waiters: { resolve: () => void; reject: (e: unknown) => void }[];
}

export interface KafkaSinkStats {
  messages: number;
  bytes: number;
  requests: number;
  failedRequests: number;
  /** Requests sent again after kafkajs gave up (broker unreachable). */
  retries: number;
}

/** Broker answers that no retry can change (kafkajs error `type` names). */
const PERMANENT = new Set(['MESSAGE_TOO_LARGE', 'RECORD_LIST_TOO_LARGE', 'INVALID_RECORD', 'CORRUPT_MESSAGE',
  'TOPIC_AUTHORIZATION_FAILED', 'CLUSTER_AUTHORIZATION_FAILED', 'INVALID_REQUIRED_ACKS', 'UNSUPPORTED_VERSION',
  'UNSUPPORTED_COMPRESSION_TYPE', 'INVALID_TOPIC_EXCEPTION']);

function isPermanent(err: unknown): boolean {
  for (let e = err as { type?: string; cause?: unknown; originalError?: unknown } | undefined; e; e = (e.cause ?? e.originalError) as typeof e) {
    if (e.type && PERMANENT.has(e.type)) return true;
  }
  return false;
}

export class KafkaEventSink implements EventSink {
  readonly stats: KafkaSinkStats = { messages: 0, bytes: 0, requests: 0, failedRequests: 0, retries: 0 };
  private pending: Pending = { messages: [], bytes: 0, waiters: [] };
  private buffered = 0;
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> | undefined;
  private spaceWaiters: (() => void)[] = [];
  private closed = false;
  private readonly batchBytes: number;
  private readonly lingerMs: number;
  private readonly maxBuffered: number;

  private constructor(private readonly producer: Producer, readonly settings: KafkaSettings, readonly topic: string,
    opts: KafkaSinkOptions) {
    this.batchBytes = opts.batchBytes ?? 1 << 20;
    this.lingerMs = opts.lingerMs ?? 5;
    this.maxBuffered = opts.maxBufferedBytes ?? 32 << 20;
  }

  static async connect(opts: KafkaSinkOptions): Promise<KafkaEventSink> {
    const settings = withDefaults(opts);
    const kafka = kafkaClient(settings);
    if (opts.createTopics ?? true) {
      const admin = kafka.admin();
      await admin.connect();
      try { await ensureTopics(admin, settings); } finally { await admin.disconnect(); }
    }
    // idempotent: the broker drops retried duplicates by (producer id, sequence); kafkajs then retries
    // forever, so a send only resolves once the broker has the batch (acks=all) and never rejects on outages.
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false });
    await producer.connect();
    return new KafkaEventSink(producer, settings, opts.topic ?? settings.eventsTopic, opts);
  }

  /** Bytes accepted by `send` and not yet acknowledged by the broker. */
  get bufferedBytes(): number { return this.buffered; }

  async send(messages: TransportMessage[]): Promise<void> {
    if (this.closed) throw new Error('Kafka sink is closed');
    if (messages.length === 0) return;
    let bytes = 0;
    for (const m of messages) bytes += m.value.byteLength + m.key.length;
    while (this.buffered > 0 && this.buffered + bytes > this.maxBuffered) {
      await new Promise<void>((r) => this.spaceWaiters.push(r));
    }
    this.buffered += bytes;
    const done = new Promise<void>((resolve, reject) => this.pending.waiters.push({ resolve, reject }));
    for (const m of messages) {
      const v = m.value;
      this.pending.messages.push({ key: m.key, value: Buffer.isBuffer(v) ? v : Buffer.from(v.buffer, v.byteOffset, v.byteLength) });
    }
    this.pending.bytes += bytes;
    if (this.pending.bytes >= this.batchBytes) this.kick();
    else if (!this.timer) this.timer = setTimeout(() => { this.timer = undefined; this.kick(); }, this.lingerMs);
    return done;
  }

  private kick(): void {
    if (this.flushing) return;
    this.flushing = this.drain().finally(() => {
      this.flushing = undefined;
      if (this.pending.messages.length > 0) this.kick();
    });
  }

  private async drain(): Promise<void> {
    while (this.pending.messages.length > 0) {
      // one request in flight: take whole `send` calls up to batchBytes
      const req = this.pending;
      this.pending = { messages: [], bytes: 0, waiters: [] };
      if (this.timer) { clearTimeout(this.timer); this.timer = undefined; }
      try {
        await this.sendUntilDone(req.messages);
        this.stats.requests++;
        this.stats.messages += req.messages.length;
        this.stats.bytes += req.bytes;
        for (const w of req.waiters) w.resolve();
      } catch (err) {
        this.stats.failedRequests++;
        for (const w of req.waiters) w.reject(err);
      } finally {
        this.buffered -= req.bytes;
        const ws = this.spaceWaiters; this.spaceWaiters = [];
        for (const w of ws) w();
      }
    }
  }

  /** One request, retried until the broker takes it or refuses it for good. kafkajs gives up on a broker it
   * cannot connect to (ECONNREFUSED surfaces as non-retriable after its own retries); an outage is not a
   * refusal, so the same request goes again, first in line: per-host order holds, and the idempotent
   * producer's unchanged sequence numbers let the broker drop a copy it already has. */
  private async sendUntilDone(messages: { key: string; value: Buffer }[]): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await this.producer.send({ topic: this.topic, acks: -1, compression: compressionType(this.settings.compression), messages });
        return;
      } catch (err) {
        if (this.closed || isPermanent(err)) throw err;
        this.stats.retries++;
        await new Promise((r) => setTimeout(r, Math.min(2_000, 100 * attempt)));
      }
    }
  }

  /** Resolves when everything sent so far is acknowledged (or failed). */
  async flush(): Promise<void> {
    if (this.timer) { clearTimeout(this.timer); this.timer = undefined; }
    if (this.pending.messages.length > 0) this.kick();
    while (this.flushing) await this.flushing;
  }

  async close(): Promise<void> {
    await this.flush();
    this.closed = true;
    await this.producer.disconnect();
  }
}

/** The collector's Kafka sink (EventSink): `send` resolves once the broker acknowledged (acks=all). */
export function createKafkaSink(opts: KafkaSinkOptions): Promise<KafkaEventSink> {
  return KafkaEventSink.connect(opts);
}
