// A host's reorder buffer (docs/rules.md: out-of-order input within the lateness window): events wait here until
// the watermark passes them, then leave in (ts, protocol rank, tid, cpu, arrival) order. Numbers, not objects: an
// event from bytes is kept as its frame, its offsets and the numbers its scan packed, so a window of buffered events
// costs a record of a dozen numbers each instead of a tree of decoded messages. Records, not columns: a fleet's
// batches come host after host, so a host's buffer is cold when its next batch comes, and one event's numbers side by
// side (a batch's events after one another) cost a cache line or two where a column each cost one per column. Pure.
//
// Any arrival order costs O(log n) per event, the usual one O(1): events arrive nearly sorted (per-CPU
// interleaving within a batch), so most belong among the last few buffered ones and enter a sorted run by a
// short insertion from its end. An event that belongs further back than RUN_REACH entries (descending input,
// a CPU's buffer drained late, a producer that shuffles) goes to an overflow heap instead, and release merges
// the two. (Insertion alone shifted 3.2 × 10⁹ entries for one descending batch of 80,000 events.)
import { EventFields as EV } from '../../../gen/fields.js';
import type { BodyKind, Event } from '../model.js';
import { PACKED, WireEvent, type BatchScan } from '../wire.js';

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

/** A buffered event's record: its numbers at entry × REC of one Float64Array. TS, TIE (rank and tid: tieOf) and CPU
 * order it, SEQ (arrival number) orders equal keys between the run and the heap; OFF, END and AT locate it in its frame
 * (OFF = -1: a decoded event); FIELD is its body's field number (not taken from TIE: a decoded event's tid may be 2^32
 * or more); BODY.. the PACKED numbers its scan packed (BatchScan.vals; unused for a decoded event). */
const TS = 0, TIE = 1, CPU = 2, SEQ = 3, OFF = 4, END = 5, AT = 6, FIELD = 7, BODY = 8;
const REC = BODY + PACKED;
/** Its references at entry × REFS of one array: the frame (or the decoded Event), the device as pushed, and a
 * LockAcquire's comm, read at arrival (every episode reads its acquiring task's comm; at release the frame's bytes are
 * long out of the cache). */
const SRC = 0, DEV = 1, COMM = 2, REFS = 3;
type Ref = Uint8Array | Event | DeviceRef | string | undefined;

/** How far back from its end the sorted run takes an event by insertion; further back goes to the heap. */
export const RUN_REACH = 32;

/** What a buffer has done, in units of work: entries shifted by insertion and heap levels walked. Bounded
 * by O(n log n) for n events in any arrival order (test/reorder.test.ts holds it). */
export interface ReorderWork { shifted: number; heapSteps: number; overflowed: number }

export class ReorderBuffer<D extends DeviceRef = DeviceRef> {
  // The sorted run: live entries are [head, n).
  private rec = new Float64Array(256 * REC);
  private refs: Ref[] = [];
  private cap = 256;
  /** One entry's numbers while settle() moves it. */
  private readonly moving = new Float64Array(REC);
  private head = 0;
  private n = 0;
  private arrivals = 0;
  /** Created at the first event that arrives too far out of order (most hosts never need one). */
  private heap: OverflowHeap | null = null;
  readonly work: ReorderWork = { shifted: 0, heapSteps: 0, overflowed: 0 };

  /** `scratch`: the event that release() loads and hands out, with its body objects and interned comms; a correlator's
   * hosts share one (a host's own would be out of the cache when its next batch comes). */
  constructor(private readonly scratch: WireEvent = new WireEvent()) {}

  get size(): number { return this.n - this.head + (this.heap?.size ?? 0); }

  /** Append a decoded event (its key fields already checked) whose body is member number `field` of Event. */
  pushEvent(ev: Event, ts: number, field: number, device: D): void {
    const i = this.slotAtEnd(), r = this.rec, o = i * REC, x = i * REFS;
    r[o + TS] = ts; r[o + TIE] = tieOf(field, ev.tid ?? 0); r[o + CPU] = ev.cpu ?? 0;
    r[o + OFF] = -1; r[o + END] = 0; r[o + AT] = 0; r[o + FIELD] = field;
    this.refs[x + SRC] = ev; this.refs[x + DEV] = device; this.refs[x + COMM] = undefined;
    this.settle(i);
  }

  /** Append event `e` of a scanned frame (BatchScan: its key fields already checked), copying the numbers the scan
   * packed for it. Reads the scan's columns itself: no number crosses a call as an argument (a double that does is
   * boxed, an allocation per event). */
  pushScan(scan: BatchScan, e: number, device: D): void {
    const i = this.slotAtEnd(), r = this.rec, o = i * REC, x = i * REFS;
    const field = scan.body[e]!;
    r[o + TS] = scan.ts[e]!; r[o + TIE] = tieOf(field, scan.tid[e]!); r[o + CPU] = scan.cpu[e]!;
    r[o + OFF] = scan.start[e]!; r[o + END] = scan.end[e]!; r[o + AT] = scan.bodyAt[e]!; r[o + FIELD] = field;
    const v = scan.vals;
    for (let k = 0, from = e * PACKED; k < PACKED; k++) r[o + BODY + k] = v[from + k]!;
    const refs = this.refs;
    refs[x + SRC] = scan.frame; refs[x + DEV] = device;
    refs[x + COMM] = field === EV.lockAcquire ? this.scratch.commAt(scan.frame, scan.commStart[e]!, scan.commEnd[e]!) : undefined;
    this.settle(i);
  }

  /** Room for one more entry at the end of the run: its index. */
  private slotAtEnd(): number {
    if (this.n === this.cap) this.grow();
    this.rec[this.n * REC + SEQ] = this.arrivals++;
    return this.n++;
  }

  /** Entry i was written at the end of the run: move it to its place. A short scan back from the end (equal keys keep
   * arrival order) when it belongs among the last RUN_REACH entries, else to the heap. */
  private settle(i: number): void {
    if (i === this.head || !this.after(i - 1, i)) return; // in order: the usual case
    const r = this.rec, refs = this.refs;
    const far = i - RUN_REACH;
    if (far >= this.head && this.after(far, i)) {
      const h = (this.heap ??= new OverflowHeap(this.work));
      const s = h.alloc();
      h.rec.set(r.subarray(i * REC, (i + 1) * REC), s * REC);
      for (let k = 0; k < REFS; k++) { h.refs[s * REFS + k] = refs[i * REFS + k]; refs[i * REFS + k] = undefined; }
      h.insert(s);
      this.n--;
      this.work.overflowed++;
      return;
    }
    // Rotate the entry down to its place: at most RUN_REACH records shift up by one.
    let j = i - 1;
    while (j > this.head && this.after(j - 1, i)) j--;
    const moving = this.moving;
    for (let k = 0, x = i * REC; k < REC; k++) moving[k] = r[x + k]!;
    for (let x = (i + 1) * REC - 1; x >= (j + 1) * REC; x--) r[x] = r[x - REC]!; // by element: most moves are of a record or two
    for (let k = 0, x = j * REC; k < REC; k++) r[x + k] = moving[k]!;
    const src = refs[i * REFS + SRC], device = refs[i * REFS + DEV], comm = refs[i * REFS + COMM];
    for (let x = (i + 1) * REFS - 1; x >= (j + 1) * REFS; x--) refs[x] = refs[x - REFS];
    refs[j * REFS + SRC] = src; refs[j * REFS + DEV] = device; refs[j * REFS + COMM] = comm;
    this.work.shifted += i - j;
  }

  /** Entry j sorts after entry k (equal keys: the one that arrived first goes first). */
  private after(j: number, k: number): boolean {
    const r = this.rec, a = j * REC, b = k * REC;
    const t = r[a + TS]!, u = r[b + TS]!;
    if (t !== u) return t > u;
    if (r[a + TIE] !== r[b + TIE]) return r[a + TIE]! > r[b + TIE]!;
    return r[a + CPU]! > r[b + CPU]!;
  }

  /** Run entry j sorts before heap slot s. */
  private runFirst(j: number, h: OverflowHeap, s: number): boolean {
    return keyBefore(this.rec, j * REC, h.rec, s * REC);
  }

  /** Full: drop what was released (move the live part to the front), and double when over half is live. */
  private grow(): void {
    const h = this.head, n = this.n, live = n - h;
    if (live * 2 <= this.cap) {
      this.rec.copyWithin(0, h * REC, n * REC);
      // element by element: Array.prototype.copyWithin and fill take a generic path on a JS array
      const refs = this.refs;
      for (let k = 0; k < live * REFS; k++) refs[k] = refs[h * REFS + k];
      for (let k = live * REFS; k < n * REFS; k++) refs[k] = undefined; // no stale references to frames
    } else {
      this.cap *= 2;
      const rec = new Float64Array(this.cap * REC); rec.set(this.rec.subarray(h * REC, n * REC)); this.rec = rec;
      this.refs = this.refs.slice(h * REFS, n * REFS);
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
      while (h.size > 0 && h.rec[h.top * REC + TS]! <= watermark) {
        const s = h.top;
        while (this.head < this.n && this.runFirst(this.head, h, s)) this.releaseHead(apply);
        const ts = h.rec[s * REC + TS]!, device = h.refs[s * REFS + DEV] as D;
        const ev = this.load(h.rec, s, h.refs, device);
        const field = h.rec[s * REC + FIELD]! | 0;
        h.pop(); // before apply, as the run's head moves before it
        apply(ev, ts, device, field);
      }
      if (h.size === 0 && h.capacity > 1024) this.heap = null; // a burst's records go with it
    }
    while (this.head < this.n && this.rec[this.head * REC + TS]! <= watermark) this.releaseHead(apply);
    if (this.head === this.n) { this.head = 0; this.n = 0; }
  }

  private releaseHead(apply: ApplyEvent<D>): void {
    const i = this.head, r = this.rec, refs = this.refs;
    const ts = r[i * REC + TS]!, device = refs[i * REFS + DEV] as D;
    const ev = this.load(r, i, refs, device);
    const field = r[i * REC + FIELD]! | 0;
    refs[i * REFS + SRC] = undefined; // let the frame go once its events are out
    this.head = i + 1;
    apply(ev, ts, device, field);
  }

  /** The event of record i of `r` (the run's or the heap's): the decoded Event, or the scratch event loaded from its
   * frame and packed numbers. */
  private load(r: Float64Array, i: number, refs: Ref[], device: D): Event {
    const o = i * REC, src = refs[i * REFS + SRC];
    if (r[o + OFF]! < 0) return src as Event;
    // `| 0`: offsets and the field as small integers (the record keeps doubles; a double stored into WireEvent's
    // offsets would widen their representation for every caller)
    const tie = r[o + TIE]!, field = r[o + FIELD]! | 0;
    return this.scratch.head(r[o + TS]!, tidOf(tie), r[o + CPU]!, device.name)
      .loadPacked(src as Uint8Array, r[o + OFF]! | 0, r[o + END]! | 0, r[o + AT]! | 0, field, r, o + BODY,
        field === EV.lockAcquire ? refs[i * REFS + COMM] as string : null);
  }

  /** The buffered events in release order, decoded (checkpoints: restoring pushes them in this order). */
  pending(decode: (frame: Uint8Array, off: number, end: number) => Event): Event[] {
    const out: Event[] = [];
    const take = (r: Float64Array, refs: Ref[], i: number): void => {
      const src = refs[i * REFS + SRC], off = r[i * REC + OFF]!;
      out.push(off < 0 ? (src as Event) : decode(src as Uint8Array, off | 0, r[i * REC + END]! | 0));
    };
    const h = this.heap;
    const slots = h ? h.sortedSlots() : [];
    let i = this.head, k = 0;
    while (i < this.n || k < slots.length) {
      if (k < slots.length && (i === this.n || !this.runFirst(i, h!, slots[k]!))) take(h!.rec, h!.refs, slots[k++]!);
      else take(this.rec, this.refs, i++);
    }
    return out;
  }
}

/** Record a of `r` sorts before record b of `q` by (ts, tie, cpu, arrival) (a and b: offsets of records). */
function keyBefore(r: Float64Array, a: number, q: Float64Array, b: number): boolean {
  if (r[a + TS] !== q[b + TS]) return r[a + TS]! < q[b + TS]!;
  if (r[a + TIE] !== q[b + TIE]) return r[a + TIE]! < q[b + TIE]!;
  if (r[a + CPU] !== q[b + CPU]) return r[a + CPU]! < q[b + CPU]!;
  return r[a + SEQ]! < q[b + SEQ]!;
}

/** A binary min-heap of records by (ts, tie, cpu, arrival): records and references are indexed by slot as in the
 * run, the heap array holds slots, freed slots are reused. */
class OverflowHeap {
  rec = new Float64Array(64 * REC);
  refs: Ref[] = [];
  private order = new Int32Array(64);
  private free = new Int32Array(64);
  private freeN = 0;
  /** Slots ever used (the next fresh slot). */
  private used = 0;
  private cap = 64;
  size = 0;

  constructor(private readonly work: ReorderWork) {}

  /** The slot of the least entry (size > 0). */
  get top(): number { return this.order[0]!; }

  /** A free slot for an entry (fill its record, then insert it). */
  alloc(): number {
    if (this.freeN > 0) return this.free[--this.freeN]!;
    if (this.used === this.cap) this.grow();
    return this.used++;
  }

  /** Add slot s (its record filled) to the heap. */
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
    for (let k = 0; k < REFS; k++) this.refs[top * REFS + k] = undefined; // let the frame go
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

  get capacity(): number { return this.cap; }

  /** The live slots in release order (checkpoints). */
  sortedSlots(): number[] {
    return Array.from(this.order.subarray(0, this.size)).sort((a, b) => (this.less(a, b) ? -1 : 1));
  }

  private less(a: number, b: number): boolean { return keyBefore(this.rec, a * REC, this.rec, b * REC); }

  private grow(): void {
    this.cap *= 2;
    const rec = new Float64Array(this.cap * REC); rec.set(this.rec); this.rec = rec;
    const order = new Int32Array(this.cap); order.set(this.order); this.order = order;
    const free = new Int32Array(this.cap); free.set(this.free); this.free = free;
  }
}
