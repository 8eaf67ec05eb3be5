// Collector side of the fleet transport (docs/design.md §2, §7): EventBatch bytes → Kafka topic "revokescope.events",
// key = hostname so one host's batches stay in one partition, in order. Idempotent producer, acks=all, one
// request in flight (order), zstd. kafkajs has no linger or byte batching of its own: `send` calls are
// coalesced here into requests of up to `batchBytes`, waiting at most `lingerMs` for more.
import type { Kafka, Producer } from 'kafkajs';
import type { EventSink, TransportMessage } from '../types.js';
import { compressionType, ensureTopics, kafkaClient } from './client.js';
import { withDefaults, type KafkaSettings } from './config.js';
import { retry } from '../../lib/retry.js';

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

/** One `send` call waiting for a request: its messages go out together, in one request. */
interface Pending {
  messages: { key: string; value: Buffer }[];
  bytes: number;
  resolve: () => void;
  reject: (e: unknown) => void;
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

/** A broker answer no retry can change (a message too large, no authorization, ...). */
export function isPermanent(err: unknown): boolean {
  for (let e = err as { type?: string; cause?: unknown; originalError?: unknown } | undefined; e; e = (e.cause ?? e.originalError) as typeof e) {
    if (e.type && PERMANENT.has(e.type)) return true;
  }
  return false;
}

export class KafkaEventSink implements EventSink {
  readonly stats: KafkaSinkStats = { messages: 0, bytes: 0, requests: 0, failedRequests: 0, retries: 0 };
  private pending: Pending[] = [];
  private pendingBytes = 0;
  private buffered = 0;
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> | undefined;
  private spaceWaiters: (() => void)[] = [];
  private closed = false;
  private readonly batchBytes: number;
  private readonly lingerMs: number;
  private readonly maxBuffered: number;

  private readonly producer: Producer;
  /** Settles once the topics exist and the producer is connected (`start`: retried until then). */
  private readonly ready: Promise<void>;
  private connected = false;

  private constructor(private readonly kafka: Kafka, readonly settings: KafkaSettings, readonly topic: string,
    private readonly opts: KafkaSinkOptions, retry: ((err: unknown) => void) | undefined) {
    this.batchBytes = opts.batchBytes ?? 1 << 20;
    this.lingerMs = opts.lingerMs ?? 5;
    this.maxBuffered = opts.maxBufferedBytes ?? 32 << 20;
    // idempotent: the broker drops retried duplicates by (producer id, sequence); kafkajs then retries
    // forever, so a send only resolves once the broker has the batch (acks=all) and never rejects on outages.
    this.producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false });
    this.ready = retry ? this.connectUntilDone(retry) : this.connectOnce();
    this.ready.catch(() => {}); // observed by connect() and by drain()
  }

  /** Connected before it returns: an unreachable broker is an error. */
  static async connect(opts: KafkaSinkOptions): Promise<KafkaEventSink> {
    const settings = withDefaults(opts);
    const sink = new KafkaEventSink(kafkaClient(settings), settings, opts.topic ?? settings.eventsTopic, opts, undefined);
    await sink.ready;
    return sink;
  }

  /** Returns at once and connects in the background, retrying until the broker is reachable or the sink is
   * closed; sends wait unacknowledged meanwhile. A collector started while Kafka is down therefore spools its
   * batches (CollectorOutput) instead of failing. `onRetry` sees each failed attempt. */
  static start(opts: KafkaSinkOptions, onRetry: (err: unknown) => void = () => {}): KafkaEventSink {
    const settings = withDefaults(opts);
    return new KafkaEventSink(kafkaClient(settings), settings, opts.topic ?? settings.eventsTopic, opts, onRetry);
  }

  private async connectOnce(): Promise<void> {
    if (this.opts.createTopics ?? true) {
      const admin = this.kafka.admin();
      await admin.connect();
      try { await ensureTopics(admin, this.settings); } finally { await admin.disconnect(); }
    }
    await this.producer.connect();
    this.connected = true;
  }

  private async connectUntilDone(onRetry: (err: unknown) => void): Promise<void> {
    await retry(async () => {
      if (this.closed) throw new Error('Kafka sink closed before the broker was reachable');
      await this.connectOnce();
    }, { tries: Infinity, stop: () => this.closed, onRetry, baseMs: 250, maxMs: 5_000 });
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
    const msgs = messages.map((m) => {
      const v = m.value;
      return { key: m.key, value: Buffer.isBuffer(v) ? v : Buffer.from(v.buffer, v.byteOffset, v.byteLength) };
    });
    const done = new Promise<void>((resolve, reject) => this.pending.push({ messages: msgs, bytes, resolve, reject }));
    this.pendingBytes += bytes;
    if (this.pendingBytes >= this.batchBytes) this.kick();
    else if (!this.timer) this.timer = setTimeout(() => { this.timer = undefined; this.kick(); }, this.lingerMs);
    return done;
  }

  private kick(): void {
    if (this.flushing) return;
    this.flushing = this.drain().finally(() => {
      this.flushing = undefined;
      if (this.pending.length > 0) this.kick();
    });
  }

  /** Whole `send` calls, oldest first, up to batchBytes per request (at least one): after an outage the queue
   * goes out in requests the broker accepts (its message.max.bytes), not as one. */
  private takeRequest(): Pending[] {
    let n = 0, bytes = 0;
    while (n < this.pending.length && (n === 0 || bytes + this.pending[n]!.bytes <= this.batchBytes)) bytes += this.pending[n++]!.bytes;
    this.pendingBytes -= bytes;
    return this.pending.splice(0, n);
  }

  private async drain(): Promise<void> {
    try {
      await this.ready;
    } catch (err) { // closed before the broker was ever reachable: what waits cannot be sent
      const reqs = this.takeAll();
      for (const r of reqs) { this.buffered -= r.bytes; r.reject(err); }
      return;
    }
    while (this.pending.length > 0) {
      // one request in flight
      if (this.timer) { clearTimeout(this.timer); this.timer = undefined; }
      const req = this.takeRequest();
      const bytes = req.reduce((n, r) => n + r.bytes, 0);
      const messages = req.length === 1 ? req[0]!.messages : req.flatMap((r) => r.messages);
      try {
        await this.sendUntilDone(messages);
        this.stats.requests++;
        this.stats.messages += messages.length;
        this.stats.bytes += bytes;
        for (const r of req) r.resolve();
      } catch (err) {
        this.stats.failedRequests++;
        for (const r of req) r.reject(err);
      } finally {
        this.buffered -= bytes;
        const ws = this.spaceWaiters; this.spaceWaiters = [];
        for (const w of ws) w();
      }
    }
  }

  private takeAll(): Pending[] {
    const all = this.pending;
    this.pending = [];
    this.pendingBytes = 0;
    return all;
  }

  /** One request, retried until the broker takes it or refuses it for good. kafkajs gives up on a broker it
   * cannot connect to (ECONNREFUSED surfaces as non-retriable after its own retries); an outage is not a
   * refusal, so the same request goes again, first in line: per-host order holds, and the idempotent
   * producer's unchanged sequence numbers let the broker drop a copy it already has. */
  private async sendUntilDone(messages: { key: string; value: Buffer }[]): Promise<void> {
    await retry(() => this.producer.send({ topic: this.topic, acks: -1, compression: compressionType(this.settings.compression), messages }),
      { tries: Infinity, stop: () => this.closed, retriable: (err) => !isPermanent(err), onRetry: () => { this.stats.retries++; } });
  }

  /** Resolves when everything sent so far is acknowledged (or failed). */
  async flush(): Promise<void> {
    if (this.timer) { clearTimeout(this.timer); this.timer = undefined; }
    if (this.pending.length > 0) this.kick();
    while (this.flushing) await this.flushing;
  }

  async close(): Promise<void> {
    if (!this.connected) this.closed = true; // stop the background connect; queued sends are rejected
    await this.flush();
    this.closed = true;
    if (this.connected) await this.producer.disconnect();
  }
}

/** The collector's Kafka sink (EventSink): `send` resolves once the broker acknowledged (acks=all). */
export function createKafkaSink(opts: KafkaSinkOptions): Promise<KafkaEventSink> {
  return KafkaEventSink.connect(opts);
}

/** The same sink, connecting in the background (see KafkaEventSink.start): for agents, which must not fail
 * when they start before the broker is reachable. */
export function startKafkaSink(opts: KafkaSinkOptions, onRetry?: (err: unknown) => void): KafkaEventSink {
  return KafkaEventSink.start(opts, onRetry);
}
