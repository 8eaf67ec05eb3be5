// A host's reorder buffer (docs/rules.md: out-of-order input within the lateness window): events wait here until
// the watermark passes them, then leave in (ts, protocol rank, tid, cpu, arrival) order. Columns, not
// objects: an event from bytes is kept as (frame, offset) and decoded only when released, so a window of
// buffered events costs a few numbers each instead of a tree of decoded messages. Pure.
//
// Any arrival order costs O(log n) per event, the usual one O(1): events arrive nearly sorted (per-CPU
// interleaving within a batch), so most belong among the last few buffered ones and enter a sorted run by a
// short insertion from its end. An event that belongs further back than RUN_REACH entries (descending input,
// a CPU's buffer drained late, a producer that shuffles) goes to an overflow heap instead, and release merges
// the two. (Insertion alone shifted 3.2 × 10⁹ entries for one descending batch of 80,000 events.)
import { EventFields as EV } from '../../../gen/fields.js';
import type { BodyKind, Event } from '../model.js';
import { STRIDE, WireEvent, type BatchScan } from '../wire.js';

/** What the buffer keeps of an event's device: its name, and what its owner attaches to it (the host: the device's
 * tracker), so the owner looks the name up once, at arrival, and not again at release. */
export interface DeviceRef { readonly name: string }

/** The apply callback of release(): the event (a reused object: read it, do not keep it), its ts, its device as pushed
 * and its body's field number in Event. */
export type ApplyEvent<D extends DeviceRef> = (ev: Event, ts: number, device: D, field: number) => void;

/** Tie-break for events of equal ts_ns (rare at ns resolution): the protocol's own order. */
const RANK: Record<BodyKind, number> = {
  deviceInfo: 0, barMmap: 1, trigger: 2, lockAcquire: 3, barFault: 4, zap: 5, dmabufRevoke: 6, moveNotify: 7,
  powerTransition: 8, resetFunction: 9, lockRelease: 10, triggerEnd: 11, barMunmap: 12,
};

/** Second sort key: rank then tid (tid < 2^32, so exact in a double). */
export const tieKey = (kind: BodyKind, tid: number): number => tieOf(EV[kind], tid);

/** The tid of a tie key (floor and subtract: `%` of a double is a call to fmod, several times slower). */
const tidOf = (tie: number): number => tie - Math.floor(tie / 0x100000000) * 0x100000000;

/** RANK by the body's field number in Event. */
const RANK_BY_FIELD: number[] = [];
for (const [kind, rank] of Object.entries(RANK)) RANK_BY_FIELD[EV[kind as BodyKind]] = rank;

/** tieKey by the body's field number. */
const tieOf = (field: number, tid: number): number => RANK_BY_FIELD[field]! * 0x100000000 + tid;

/** How far back from its end the sorted run takes an event by insertion; further back goes to the heap. */
export const RUN_REACH = 32;

/** What a buffer has done, in units of work: entries shifted by insertion and heap levels walked. Bounded
 * by O(n log n) for n events in any arrival order (test/reorder.test.ts holds it). */
export interface ReorderWork { shifted: number; heapSteps: number; overflowed: number }

export class ReorderBuffer<D extends DeviceRef = DeviceRef> {
  // The sorted run: live entries are [head, n).
  private ts = new Float64Array(256);
  private tie = new Float64Array(256);
  private cpu = new Float64Array(256);
  /** Arrival number: orders equal keys between the run and the heap. */
  private seq = new Float64Array(256);
  private off = new Int32Array(256);
  private end = new Int32Array(256);
  /** Offset of the body member's tag in the frame. */
  private at = new Int32Array(256);
  /** The body's field number. */
  private field = new Uint8Array(256);
  /** An event from bytes: the STRIDE numbers its scan packed (BatchScan.vals), at entry × STRIDE; created at the first
   * such event, as long as the other columns times STRIDE. */
  private pv: Float64Array | null = null;
  /** One entry's numbers while settle() moves it. */
  private readonly moving = new Float64Array(STRIDE);
  /** The frame an event lies in, or the decoded Event itself (off = -1). */
  private src: (Uint8Array | Event)[] = [];
  private device: D[] = [];
  /** A LockAcquire from bytes: its comm, read at arrival (every episode reads its acquiring task's comm; at release the
   * frame's bytes are long out of the cache). Other entries: stale. */
  private comm: string[] = [];
  private head = 0;
  private n = 0;
  private arrivals = 0;
  /** Created at the first event that arrives too far out of order (most hosts never need one). */
  private heap: OverflowHeap<D> | null = null;
  private readonly scratch = new WireEvent();
  readonly work: ReorderWork = { shifted: 0, heapSteps: 0, overflowed: 0 };

  get size(): number { return this.n - this.head + (this.heap?.size ?? 0); }

  /** Append a decoded event (its key fields already checked) whose body is member number `field` of Event. */
  pushEvent(ev: Event, ts: number, field: number, device: D): void {
    const i = this.slotAtEnd();
    this.ts[i] = ts; this.tie[i] = tieOf(field, ev.tid ?? 0); this.cpu[i] = ev.cpu ?? 0;
    this.off[i] = -1; this.end[i] = 0; this.at[i] = 0; this.field[i] = field;
    this.src[i] = ev; this.device[i] = device;
    this.settle(i);
  }

  /** Append event `e` of a scanned frame (BatchScan: its key fields already checked), copying the numbers the scan
   * packed for it. Reads the scan's columns itself: no number crosses a call as an argument (a double that does is
   * boxed, an allocation per event). */
  pushScan(scan: BatchScan, e: number, device: D): void {
    const i = this.slotAtEnd();
    const field = scan.body[e]!;
    this.ts[i] = scan.ts[e]!; this.tie[i] = tieOf(field, scan.tid[e]!); this.cpu[i] = scan.cpu[e]!;
    this.off[i] = scan.start[e]!; this.end[i] = scan.end[e]!; this.at[i] = scan.bodyAt[e]!; this.field[i] = field;
    this.src[i] = scan.frame; this.device[i] = device;
    const pv = (this.pv ??= new Float64Array(this.ts.length * STRIDE)), v = scan.vals;
    for (let k = 0, from = e * STRIDE, to = i * STRIDE; k < STRIDE; k++) pv[to + k] = v[from + k]!;
    if (field === EV.lockAcquire) this.comm[i] = this.scratch.commAt(scan.frame, scan.commStart[e]!, scan.commEnd[e]!);
    this.settle(i);
  }

  /** Room for one more entry at the end of the run: its index. */
  private slotAtEnd(): number {
    if (this.n === this.ts.length) this.grow();
    this.seq[this.n] = this.arrivals++;
    return this.n++;
  }

  /** Entry i was written at the end of the run: move it to its place. A short scan back from the end (equal keys keep
   * arrival order) when it belongs among the last RUN_REACH entries, else to the heap. */
  private settle(i: number): void {
    if (i === this.head || !this.after(i - 1, i)) return; // in order: the usual case
    const far = i - RUN_REACH;
    if (far >= this.head && this.after(far, i)) {
      const h = (this.heap ??= new OverflowHeap<D>(this.work));
      const x = h.alloc();
      h.ts[x] = this.ts[i]!; h.tie[x] = this.tie[i]!; h.cpu[x] = this.cpu[i]!; h.seq[x] = this.seq[i]!;
      h.off[x] = this.off[i]!; h.end[x] = this.end[i]!; h.at[x] = this.at[i]!; h.field[x] = this.field[i]!;
      h.src[x] = this.src[i]!; h.device[x] = this.device[i]!; h.comm[x] = this.comm[i]!;
      if (this.off[i]! >= 0) h.pv.set(this.pv!.subarray(i * STRIDE, (i + 1) * STRIDE), x * STRIDE);
      h.insert(x);
      this.src[i] = undefined as unknown as Event;
      this.n--;
      this.work.overflowed++;
      return;
    }
    // Rotate the entry down to its place: at most RUN_REACH entries shift up by one, element by element (cheaper than
    // a copyWithin per column).
    let j = i - 1;
    while (j > this.head && this.after(j - 1, i)) j--;
    const ts = this.ts[i]!, tie = this.tie[i]!, cpu = this.cpu[i]!, seq = this.seq[i]!, off = this.off[i]!, end = this.end[i]!;
    const at = this.at[i]!, field = this.field[i]!, src = this.src[i]!, device = this.device[i]!, comm = this.comm[i]!;
    for (let k = i; k > j; k--) {
      this.ts[k] = this.ts[k - 1]!; this.tie[k] = this.tie[k - 1]!; this.cpu[k] = this.cpu[k - 1]!; this.seq[k] = this.seq[k - 1]!;
      this.off[k] = this.off[k - 1]!; this.end[k] = this.end[k - 1]!; this.at[k] = this.at[k - 1]!;
      this.src[k] = this.src[k - 1]!; this.device[k] = this.device[k - 1]!; this.field[k] = this.field[k - 1]!; this.comm[k] = this.comm[k - 1]!;
    }
    const pv = this.pv;
    if (pv) { // the entries' packed numbers move with them (a decoded event's are unused); by element: a subarray is an allocation
      const moving = this.moving, to = j * STRIDE;
      for (let k = 0, x = i * STRIDE; k < STRIDE; k++) moving[k] = pv[x + k]!;
      for (let x = (i + 1) * STRIDE - 1; x >= to + STRIDE; x--) pv[x] = pv[x - STRIDE]!;
      for (let k = 0; k < STRIDE; k++) pv[to + k] = moving[k]!;
    }
    this.work.shifted += i - j;
    this.ts[j] = ts; this.tie[j] = tie; this.cpu[j] = cpu; this.seq[j] = seq; this.off[j] = off; this.end[j] = end;
    this.at[j] = at; this.field[j] = field; this.src[j] = src; this.device[j] = device; this.comm[j] = comm;
  }

  /** Entry j sorts after entry k (equal keys: the one that arrived first goes first). */
  private after(j: number, k: number): boolean {
    const t = this.ts[j]!, u = this.ts[k]!;
    if (t !== u) return t > u;
    if (this.tie[j] !== this.tie[k]) return this.tie[j]! > this.tie[k]!;
    return this.cpu[j]! > this.cpu[k]!;
  }

  /** Run entry j sorts before heap slot s. */
  private runFirst(j: number, h: OverflowHeap<D>, s: number): boolean {
    if (this.ts[j] !== h.ts[s]) return this.ts[j]! < h.ts[s]!;
    if (this.tie[j] !== h.tie[s]) return this.tie[j]! < h.tie[s]!;
    if (this.cpu[j] !== h.cpu[s]) return this.cpu[j]! < h.cpu[s]!;
    return this.seq[j]! < h.seq[s]!;
  }

  /** Full: drop what was released (move the live part to the front), and double when over half is live. */
  private grow(): void {
    const h = this.head, n = this.n, live = n - h;
    if (live * 2 <= this.ts.length) {
      this.ts.copyWithin(0, h, n); this.tie.copyWithin(0, h, n); this.cpu.copyWithin(0, h, n); this.seq.copyWithin(0, h, n);
      this.off.copyWithin(0, h, n); this.end.copyWithin(0, h, n); this.at.copyWithin(0, h, n);
      this.field.copyWithin(0, h, n);
      this.pv?.copyWithin(0, h * STRIDE, n * STRIDE);
      // element by element: Array.prototype.copyWithin and fill take a generic path on a JS array
      const src = this.src, device = this.device, comm = this.comm;
      for (let k = 0; k < live; k++) { src[k] = src[h + k]!; device[k] = device[h + k]!; comm[k] = comm[h + k]!; }
      for (let k = live; k < n; k++) src[k] = undefined as unknown as Event; // no stale references to frames
    } else {
      const cap = this.ts.length * 2;
      const widen = <T extends Float64Array | Int32Array | Uint8Array>(a: T, make: new (n: number) => T): T => {
        const x = new make(cap); x.set(a.subarray(h, n)); return x;
      };
      this.ts = widen(this.ts, Float64Array); this.tie = widen(this.tie, Float64Array); this.cpu = widen(this.cpu, Float64Array);
      this.seq = widen(this.seq, Float64Array);
      this.off = widen(this.off, Int32Array); this.end = widen(this.end, Int32Array); this.at = widen(this.at, Int32Array);
      this.field = widen(this.field, Uint8Array);
      if (this.pv) { const pv = new Float64Array(cap * STRIDE); pv.set(this.pv.subarray(h * STRIDE, n * STRIDE)); this.pv = pv; }
      this.src = this.src.slice(h, n); this.device = this.device.slice(h, n); this.comm = this.comm.slice(h, n);
    }
    this.head = 0;
    this.n = live;
  }

  /** Hand every buffered event with ts <= watermark to `apply`, in order. The Event passed may be reused
   * by the next call: read it, do not keep it. */
  release(watermark: number, apply: ApplyEvent<D>): void {
    const h = this.heap;
    if (h) {
      // While the heap holds a releasable event: the run's entries before it, then it.
      while (h.size > 0 && h.ts[h.top]! <= watermark) {
        const s = h.top;
        while (this.head < this.n && this.runFirst(this.head, h, s)) this.releaseHead(apply);
        const ts = h.ts[s]!, src = h.src[s]!, off = h.off[s]!, device = h.device[s]!, field = h.field[s]!;
        const ev = off < 0 ? (src as Event)
          : this.scratch.head(ts, tidOf(h.tie[s]!), h.cpu[s]!, device.name)
            .loadPacked(src as Uint8Array, off, h.end[s]!, h.at[s]!, field, h.pv, s * STRIDE, field === EV.lockAcquire ? h.comm[s]! : null);
        h.pop(); // before apply, as the run's head moves before it
        apply(ev, ts, device, field);
      }
      if (h.size === 0 && h.capacity > 1024) this.heap = null; // a burst's columns go with it
    }
    while (this.head < this.n && this.ts[this.head]! <= watermark) this.releaseHead(apply);
    if (this.head === this.n) { this.head = 0; this.n = 0; }
  }

  private releaseHead(apply: ApplyEvent<D>): void {
    const i = this.head;
    const ts = this.ts[i]!;
    const src = this.src[i]!, device = this.device[i]!, field = this.field[i]!;
    const ev = this.off[i]! < 0 ? (src as Event)
      : this.scratch.head(ts, tidOf(this.tie[i]!), this.cpu[i]!, device.name)
        .loadPacked(src as Uint8Array, this.off[i]!, this.end[i]!, this.at[i]!, field, this.pv!, i * STRIDE,
          field === EV.lockAcquire ? this.comm[i]! : null);
    this.src[i] = undefined as unknown as Event; // let the frame go once its events are out
    this.head = i + 1;
    apply(ev, ts, device, field);
  }

  /** The buffered events in release order, decoded (checkpoints: restoring pushes them in this order). */
  pending(decode: (frame: Uint8Array, off: number, end: number) => Event): Event[] {
    const out: Event[] = [];
    const take = (src: Uint8Array | Event, off: number, end: number): void => {
      out.push(off < 0 ? (src as Event) : decode(src as Uint8Array, off, end));
    };
    const h = this.heap;
    const slots = h ? h.sortedSlots() : [];
    let i = this.head, k = 0;
    while (i < this.n || k < slots.length) {
      if (k < slots.length && (i === this.n || !this.runFirst(i, h!, slots[k]!))) {
        const s = slots[k++]!;
        take(h!.src[s]!, h!.off[s]!, h!.end[s]!);
      } else { take(this.src[i]!, this.off[i]!, this.end[i]!); i++; }
    }
    return out;
  }
}

/** A binary min-heap of events by (ts, tie, cpu, arrival): the columns are indexed by slot, the heap array
 * holds slots, freed slots are reused. */
class OverflowHeap<D extends DeviceRef> {
  ts = new Float64Array(64);
  tie = new Float64Array(64);
  cpu = new Float64Array(64);
  seq = new Float64Array(64);
  off = new Int32Array(64);
  end = new Int32Array(64);
  at = new Int32Array(64);
  field = new Uint8Array(64);
  /** Packed numbers of events from bytes, at slot × STRIDE. */
  pv = new Float64Array(64 * STRIDE);
  src: (Uint8Array | Event | undefined)[] = [];
  device: D[] = [];
  comm: string[] = [];
  private order = new Int32Array(64);
  private free = new Int32Array(64);
  private freeN = 0;
  /** Slots ever used (the next fresh slot). */
  private used = 0;
  size = 0;

  constructor(private readonly work: ReorderWork) {}

  /** The slot of the least entry (size > 0). */
  get top(): number { return this.order[0]!; }

  /** A free slot for an entry (fill its columns, then insert it). */
  alloc(): number {
    if (this.freeN > 0) return this.free[--this.freeN]!;
    if (this.used === this.ts.length) this.grow();
    return this.used++;
  }

  /** Add slot s (its columns filled) to the heap. */
  insert(s: number): void {
    // sift up
    let i = this.size++;
    while (i > 0) {
      const p = (i - 1) >> 1;
      const ps = this.order[p]!;
      if (!this.less(s, ps)) break;
      this.order[i] = ps;
      i = p;
      this.work.heapSteps++;
    }
    this.order[i] = s;
  }

  /** Remove the least entry and free its slot. */
  pop(): void {
    const top = this.order[0]!;
    this.src[top] = undefined; // let the frame go
    this.free[this.freeN++] = top;
    const last = this.order[--this.size]!;
    if (this.size === 0) return;
    // sift down
    let i = 0;
    const n = this.size;
    for (;;) {
      let c = 2 * i + 1;
      if (c >= n) break;
      if (c + 1 < n && this.less(this.order[c + 1]!, this.order[c]!)) c++;
      if (!this.less(this.order[c]!, last)) break;
      this.order[i] = this.order[c]!;
      i = c;
      this.work.heapSteps++;
    }
    this.order[i] = last;
  }

  get capacity(): number { return this.ts.length; }

  /** The live slots in release order (checkpoints). */
  sortedSlots(): number[] {
    return Array.from(this.order.subarray(0, this.size)).sort((a, b) => (this.less(a, b) ? -1 : 1));
  }

  private less(a: number, b: number): boolean {
    if (this.ts[a] !== this.ts[b]) return this.ts[a]! < this.ts[b]!;
    if (this.tie[a] !== this.tie[b]) return this.tie[a]! < this.tie[b]!;
    if (this.cpu[a] !== this.cpu[b]) return this.cpu[a]! < this.cpu[b]!;
    return this.seq[a]! < this.seq[b]!;
  }

  private grow(): void {
    const cap = this.ts.length * 2;
    const widen = <T extends Float64Array | Int32Array>(a: T, make: new (n: number) => T): T => {
      const x = new make(cap); x.set(a); return x;
    };
    this.ts = widen(this.ts, Float64Array); this.tie = widen(this.tie, Float64Array);
    this.cpu = widen(this.cpu, Float64Array); this.seq = widen(this.seq, Float64Array);
    this.off = widen(this.off, Int32Array); this.end = widen(this.end, Int32Array); this.at = widen(this.at, Int32Array);
    this.order = widen(this.order, Int32Array); this.free = widen(this.free, Int32Array);
    const field = new Uint8Array(cap); field.set(this.field); this.field = field;
    const pv = new Float64Array(cap * STRIDE); pv.set(this.pv); this.pv = pv;
  }
}
