// A host's reorder buffer (DESIGN §4: out-of-order input within the lateness window): events wait here until
// the watermark passes them, then leave in (ts, protocol rank, tid, cpu, arrival) order. Columns, not
// objects: an event from bytes is kept as (frame, offset) and decoded only when released, so a window of
// buffered events costs a few numbers each instead of a tree of decoded messages. Kept sorted by insertion. Pure.
import type { BodyKind, Event } from '../model.js';
import { WireEvent } from '../wire.js';

/** Tie-break for events of equal ts_ns (rare at ns resolution): the protocol's own order. */
const RANK: Record<BodyKind, number> = {
  deviceInfo: 0, barMmap: 1, trigger: 2, lockAcquire: 3, barFault: 4, zap: 5, dmabufRevoke: 6, moveNotify: 7,
  powerTransition: 8, resetFunction: 9, lockRelease: 10, triggerEnd: 11, barMunmap: 12,
};

/** Second sort key: rank then tid (tid < 2^32, so exact in a double). */
export const tieKey = (kind: BodyKind, tid: number): number => RANK[kind] * 0x100000000 + tid;

export class ReorderBuffer {
  private ts = new Float64Array(256);
  private tie = new Float64Array(256);
  private cpu = new Float64Array(256);
  private off = new Int32Array(256);
  private end = new Int32Array(256);
  /** Offset of the body member's tag in the frame. */
  private at = new Int32Array(256);
  /** The frame an event lies in, or the decoded Event itself (off = -1). */
  private src: (Uint8Array | Event)[] = [];
  private device: string[] = [];
  private head = 0;
  private n = 0;
  private readonly scratch = new WireEvent();

  get size(): number { return this.n - this.head; }

  /** Append a decoded event (its key fields already checked). */
  pushEvent(ev: Event, ts: number, kind: BodyKind): void {
    this.append(ts, tieKey(kind, ev.tid ?? 0), ev.cpu ?? 0, ev, -1, 0, 0, ev.device!);
  }

  /** Append an event held as bytes [off, end) of `frame`, its body's tag at `at`. */
  pushWire(frame: Uint8Array, off: number, end: number, at: number, ts: number, tie: number, cpu: number, device: string): void {
    this.append(ts, tie, cpu, frame, off, end, at, device);
  }

  /** Insert in order: events arrive nearly sorted (per-CPU interleaving within a batch), so the scan back
   * from the end is short; equal keys keep arrival order. */
  private append(ts: number, tie: number, cpu: number, src: Uint8Array | Event, off: number, end: number, at: number,
    device: string): void {
    if (this.n === this.ts.length) this.grow();
    const n = this.n++;
    let i = n;
    while (i > this.head && this.after(i - 1, ts, tie, cpu)) i--;
    if (i < n) {
      this.ts.copyWithin(i + 1, i, n); this.tie.copyWithin(i + 1, i, n); this.cpu.copyWithin(i + 1, i, n);
      this.off.copyWithin(i + 1, i, n); this.end.copyWithin(i + 1, i, n); this.at.copyWithin(i + 1, i, n);
      for (let k = n; k > i; k--) { this.src[k] = this.src[k - 1]!; this.device[k] = this.device[k - 1]!; }
    }
    this.ts[i] = ts; this.tie[i] = tie; this.cpu[i] = cpu; this.off[i] = off; this.end[i] = end; this.at[i] = at;
    this.src[i] = src; this.device[i] = device;
  }

  /** Entry j sorts after an event with these keys (equal keys: j arrived first, so it is not after). */
  private after(j: number, ts: number, tie: number, cpu: number): boolean {
    const t = this.ts[j]!;
    if (t !== ts) return t > ts;
    if (this.tie[j] !== tie) return this.tie[j]! > tie;
    return this.cpu[j]! > cpu;
  }

  /** Full: drop what was released (move the live part to the front), and double when over half is live. */
  private grow(): void {
    const h = this.head, n = this.n, live = n - h;
    if (live * 2 <= this.ts.length) {
      this.ts.copyWithin(0, h, n); this.tie.copyWithin(0, h, n); this.cpu.copyWithin(0, h, n);
      this.off.copyWithin(0, h, n); this.end.copyWithin(0, h, n); this.at.copyWithin(0, h, n);
      this.src.copyWithin(0, h, n); this.device.copyWithin(0, h, n);
      this.src.fill(undefined as unknown as Event, live, n); // no stale references to frames
    } else {
      const cap = this.ts.length * 2;
      const widen = <T extends Float64Array | Int32Array>(a: T, make: new (n: number) => T): T => {
        const x = new make(cap); x.set(a.subarray(h, n)); return x;
      };
      this.ts = widen(this.ts, Float64Array); this.tie = widen(this.tie, Float64Array); this.cpu = widen(this.cpu, Float64Array);
      this.off = widen(this.off, Int32Array); this.end = widen(this.end, Int32Array); this.at = widen(this.at, Int32Array);
      this.src = this.src.slice(h, n); this.device = this.device.slice(h, n);
    }
    this.head = 0;
    this.n = live;
  }

  /** Hand every buffered event with ts <= watermark to `apply`, in order. The Event passed may be reused
   * by the next call: read it, do not keep it. */
  release(watermark: number, apply: (ev: Event, ts: number) => void): void {
    let i = this.head;
    const n = this.n;
    while (i < n && this.ts[i]! <= watermark) {
      const ts = this.ts[i]!;
      const src = this.src[i]!;
      const ev = this.off[i]! < 0 ? (src as Event)
        : this.scratch.load(src as Uint8Array, this.off[i]!, this.end[i]!, this.at[i]!, ts, this.tie[i]! % 0x100000000, this.cpu[i]!, this.device[i]!);
      this.src[i] = undefined as unknown as Event; // let the frame go once its events are out
      this.head = ++i;
      apply(ev, ts);
    }
    if (this.head === this.n) { this.head = 0; this.n = 0; }
  }

  /** The buffered events, decoded (checkpoints). */
  pending(decode: (frame: Uint8Array, off: number, end: number) => Event): Event[] {
    const out: Event[] = [];
    for (let i = this.head; i < this.n; i++) {
      const src = this.src[i]!;
      out.push(this.off[i]! < 0 ? (src as Event) : decode(src as Uint8Array, this.off[i]!, this.end[i]!));
    }
    return out;
  }
}
