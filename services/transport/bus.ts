// The in-process bus of embedded mode: the same EventSink/EventSource contract Kafka implements in fleet
// mode. Bounded: send() waits while the queue is full, so a fast source runs at the consumer's pace and
// nothing is dropped. One partition (0), in order, starting at offset 0 (the embedded pipeline has one
// correlator); acks count what the pipeline has made durable.
import type { EventSink, EventSource, SourceHandler, TransportMessage } from './types.js';

export interface BusOptions {
  /** Messages the queue holds before send() waits. Default 256. */
  capacity?: number;
  /** Most messages handed to the handler at once. Default 64. */
  maxDelivery?: number;
}

export class InProcessBus implements EventSink, EventSource {
  readonly capacity: number;
  private readonly maxDelivery: number;
  private readonly queue: TransportMessage[] = [];
  private head = 0;
  private nextOffset = 0;
  private closed = false;
  private stopped = false;
  private spaceWaiters: (() => void)[] = [];
  private dataWaiter: (() => void) | undefined;
  /** Messages delivered and handled. */
  delivered = 0;
  /** Messages acknowledged as durable by the pipeline (ack). */
  acknowledged = 0;

  constructor(opts: BusOptions = {}) {
    this.capacity = Math.max(1, opts.capacity ?? 256);
    this.maxDelivery = Math.max(1, opts.maxDelivery ?? 64);
  }

  /** Messages waiting for the consumer. */
  get depth(): number { return this.queue.length - this.head; }
  get lag(): number { return this.depth; }
  /** One partition (0): the offset the next message sent will have. */
  endOf(partition: number): number { return partition === 0 ? this.nextOffset : 0; }

  async send(messages: TransportMessage[]): Promise<void> {
    for (const m of messages) {
      while (this.depth >= this.capacity && !this.stopped) await new Promise<void>((r) => this.spaceWaiters.push(r));
      if (this.stopped) throw new Error('bus stopped: message not accepted');
      if (this.closed) throw new Error('bus closed: message not accepted');
      this.queue.push({ key: m.key, value: m.value, offset: String(this.nextOffset++), partition: 0 });
      this.wakeConsumer();
    }
  }

  /** Producer side is done: the consumer drains what is queued, then run() resolves. */
  async close(): Promise<void> {
    this.closed = true;
    this.wakeConsumer();
  }

  async run(handler: SourceHandler): Promise<void> {
    await handler.assign([{ partition: 0, committed: -1, low: 0, high: 0 }]);
    for (;;) {
      if (this.stopped) return;
      if (this.depth === 0) {
        if (this.closed) return;
        await new Promise<void>((r) => { this.dataWaiter = r; });
        continue;
      }
      const end = Math.min(this.queue.length, this.head + this.maxDelivery);
      const batch = this.queue.slice(this.head, end);
      // the slots stay taken until the handler is done with them: capacity bounds in-flight work too
      await handler.deliver(batch, 0);
      this.delivered += batch.length;
      this.head = end;
      if (this.head > 4096 && this.head * 2 > this.queue.length) {
        this.queue.splice(0, this.head);
        this.head = 0;
      }
      this.wakeProducers();
    }
  }

  async ack(_partition: number, offset: number): Promise<void> {
    if (offset > this.acknowledged) this.acknowledged = offset;
  }

  /** Stops delivering after the current handler call; senders waiting for space are refused. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.wakeConsumer();
    this.wakeProducers();
  }

  private wakeConsumer(): void {
    const w = this.dataWaiter;
    this.dataWaiter = undefined;
    w?.();
  }

  private wakeProducers(): void {
    const ws = this.spaceWaiters;
    this.spaceWaiters = [];
    for (const w of ws) w();
  }
}
