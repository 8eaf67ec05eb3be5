// One partition's stage of the pipeline: each message is read once by the wire reader (core/wire.ts: the same
// reader, and the same accept/reject decision, as `analyze`); the scan then feeds the correlator, the host health
// counters and (in pipeline.ts) the store's raw-event rows. A message that cannot be used becomes a dead letter
// with its reason; nothing a message contains can throw out of here.
import type { Correlator } from '../core/correlator/index.js';
import { FieldError } from '../core/validate.js';
import { BatchScan, WireError } from '../core/wire.js';
import type { BootSeen } from '../store/types.js';
import type { TransportMessage } from '../transport/types.js';
import type { HostHealthTracker } from './health.js';

/** Why a message was dead-lettered: a class for counting ("corrupt protobuf", "invalid batch", "internal error")
 * and the whole text. */
export interface DeadLetterReason { class: string; text: string }

export interface Handled {
  /** Before the partition's position (delivered again after a seek): nothing done. */
  skipped: boolean;
  /** Below the committed offset: state rebuilt, outputs already stored. */
  replay: boolean;
  deadLetter?: DeadLetterReason;
}

export class PartitionStage {
  /** Next offset to handle. */
  next: number;
  /** Everything before this offset is handed to the store (what an acknowledgement may cover). */
  done: number;
  acked = -1;
  /** A delivery is being handled (its state is between `done` and `next`). */
  busy = false;
  /** Offset of the newest stored checkpoint (−1: none), when it was written and messages taken since. */
  checkpointed = -1;
  checkpointedAt = Date.now();
  sinceCheckpoint = 0;
  /** The scan of the message handled last (read it before the next handle()). */
  readonly scan = new BatchScan();
  private readonly header = new BatchScan();

  constructor(readonly partition: number, start: number, readonly resumeAt: number, readonly correlator: Correlator,
    readonly health: HostHealthTracker) {
    this.next = start;
    this.done = start;
  }

  /** Boots whose clock offsets a store may want resolved before a delivery: headers only, unreadable ones skipped. */
  bootsOf(messages: readonly TransportMessage[]): BootSeen[] {
    const out: BootSeen[] = [];
    for (const m of messages) {
      try { this.header.readHeader(m.value); } catch { continue; }
      if (this.header.count > 0) out.push({ hostname: this.header.host?.hostname ?? '', bootId: this.header.host?.bootId ?? '', tsNs: this.header.ts[0]! });
    }
    return out;
  }

  handle(m: TransportMessage): Handled {
    const off = m.offset === undefined ? this.next : Number(m.offset);
    if (off < this.next) return { skipped: true, replay: false };
    this.next = off + 1;
    this.sinceCheckpoint++;
    const replay = off < this.resumeAt;
    try {
      if (m.value.length === 0) throw new WireError('empty message');
      this.scan.read(m.value);
      const host = this.scan.host?.hostname ?? '';
      if (m.key !== host) {
        throw new FieldError('host.hostname', `message key '${m.key}' is not host.hostname '${host}' (per-host order needs key = hostname)`);
      }
    } catch (err) {
      return { skipped: false, replay, deadLetter: reasonOf(err) };
    }
    try {
      this.correlator.ingestScan(this.scan);
      this.health.observeScan(this.scan);
    } catch (err) {
      // A defect of ours, not of the message; the partition must go on all the same.
      return { skipped: false, replay, deadLetter: { class: 'internal error', text: `internal error: ${String((err as Error)?.stack ?? err)}` } };
    }
    if (replay) { this.correlator.takeEpisodes(); this.correlator.takeFindings(); } // stored before the restart
    return { skipped: false, replay };
  }
}

function reasonOf(err: unknown): DeadLetterReason {
  if (err instanceof WireError) return { class: 'corrupt protobuf', text: `corrupt protobuf: ${err.message}` };
  if (err instanceof FieldError) return { class: 'invalid batch', text: `invalid batch: ${err.message}` };
  return { class: 'internal error', text: `internal error: ${String((err as Error)?.message ?? err)}` };
}
