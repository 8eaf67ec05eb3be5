// The fleet pipeline's outputs to Kafka: findings to "revokescope.findings" (protobuf Finding, key = hostname) and
// unusable messages to "revokescope.dlq" (the original bytes, with `reason` and source topic/partition/offset
// headers). Sends run in the background; `settled()` waits for every one so far (the pipeline acknowledges offsets
// only after it) and rethrows the first failure. A broker outage is no failure: a send is retried until the broker
// has it (backpressure: the acknowledgements wait), only a permanent refusal fails it (found by the soak test: a
// findings send that outlived kafkajs' retries during a 15 s outage stopped the correlator).
import type { Kafka, Producer } from 'kafkajs';
import { v1, type Finding } from '../../core/model.js';
import type { TransportMessage } from '../types.js';
import { retry } from '../../lib/retry.js';
import { compressionType, kafkaClient } from './client.js';
import { isPermanent } from './producer.js';
import { withDefaults, type KafkaSettings } from './config.js';

export class KafkaPublisher {
  readonly settings: KafkaSettings;
  private readonly kafka: Kafka;
  private producer: Producer | undefined;
  private sends: Promise<unknown>[] = [];
  private closing = false;

  constructor(opts: Partial<KafkaSettings> & { brokers: string[] }, private readonly publishFindings = true) {
    this.settings = withDefaults(opts);
    this.kafka = kafkaClient(this.settings);
  }

  async start(): Promise<void> {
    this.producer = this.kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false });
    await this.producer.connect();
  }

  deadLetter(m: TransportMessage, reason: string): void {
    this.track(() => this.producer!.send({
      topic: this.settings.dlqTopic, acks: -1,
      messages: [{ key: m.key, value: Buffer.from(m.value.buffer, m.value.byteOffset, m.value.byteLength), headers: {
        reason: reason.slice(0, 1000), 'source-topic': this.settings.eventsTopic, 'source-partition': String(m.partition ?? 0),
        'source-offset': m.offset ?? '',
      } }],
    }));
  }

  findings(findings: Finding[]): void {
    if (!this.publishFindings || findings.length === 0) return;
    this.track(() => this.producer!.send({
      topic: this.settings.findingsTopic, acks: -1, compression: compressionType(this.settings.compression),
      messages: findings.map((f) => ({ key: f.hostname, value: Buffer.from(v1.Finding.encode(f).finish()) })),
    }));
  }

  private track(send: () => Promise<unknown>): void {
    const p = retry(send, { tries: Infinity, baseMs: 250, maxMs: 5_000, retriable: (err) => !this.closing && !isPermanent(err) });
    // awaited in settled(); a failure there fails the acknowledgement instead of an unhandled rejection
    this.sends.push(p.then(() => undefined, (err: unknown) => err ?? new Error('send failed')));
  }

  async settled(): Promise<void> {
    const sends = this.sends;
    this.sends = [];
    const failed = (await Promise.all(sends)).find((r) => r !== undefined);
    if (failed) throw failed;
  }

  async close(): Promise<void> {
    this.closing = true; // a send still failing now gives up (its offsets are not acknowledged: replayed)
    await this.settled().catch(() => {});
    await this.producer?.disconnect().catch(() => {});
  }
}
