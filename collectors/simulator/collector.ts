// The simulated collector's side of a host: per-CPU ring buffers read every epoch (events in ts order per CPU, not
// across CPUs), batches cut when full, after the flush interval or at least once a second (a heartbeat when idle,
// every batch with the collector's clock in now_ns), and ring-buffer loss reported as `dropped` or as a seq gap with
// the window of host time where the lost events lie. Pure and deterministic; host.ts generates the events.
import type { Event, EventBatch, HostInfo } from '../../services/core/model.js';
import type { FleetStats, LossWindow } from './truth.js';

const MS = 1_000_000, S = 1_000_000_000;
/** Collector read window: within it, events are delivered grouped by CPU (per-CPU ring buffers). */
const PERCPU_WINDOW_NS = 2 * MS;
/** An idle collector sends an empty batch (a heartbeat) so that no two batches are more than 1 s apart. */
export const HEARTBEAT_NS = 900 * MS;

/** flush() scratch (one flush at a time): per ready event its per-CPU read-window sort key w, r, its
 * tsNs, and the sorted order as indexes into the ready list. */
let keyW = new Float64Array(256), keyR = new Float64Array(256), keyT = new Float64Array(256), order = new Int32Array(256);
const ready: (Event | undefined)[] = [];

export class SimCollector {
  readonly lossWindows: LossWindow[] = [];
  /** The first pendingN are the events not yet read by the collector, in emission order, with their tsNs
   * and cpu (read here rather than from events of many shapes); pendingMin: the smallest of those tsNs.
   * A count rather than the arrays' length, which would drop their storage when set to 0. */
  private pending: (Event | undefined)[] = [];
  private pendingTs: number[] = [];
  private pendingCpu: number[] = [];
  private pendingN = 0;
  private pendingMin = Infinity;
  /** Events the ring buffer loses (set by the host's loss scenarios), and how the loss is reported. */
  private dropSet = new Set<Event>();
  private dropMode: LossWindow['mode'] = 'dropped';
  private dropScenario = '';
  private nextSeq = 0;
  private cur: Event[] = [];
  private curOpenedTs = 0;
  private curMin = Infinity;
  private curMax = -Infinity;
  private lastCutNs: number;
  private pendingDropped = 0;
  private lostRun = 0;
  private maxTsEmitted = -Infinity;
  private lossOpen: { maxBefore: number; mode: LossWindow['mode']; lost: number; scenario: string } | undefined;

  constructor(private readonly host: HostInfo, private readonly t0: number, private readonly batchSize: number,
    private readonly flushIntervalNs: number, private readonly stats: FleetStats) {
    this.lastCutNs = t0;
  }

  /** The kernel emitted `ev` at `ts` on `cpu`; `lost`: the ring buffer loses it. */
  enqueue(ev: Event, ts: number, cpu: number, lost: boolean): void {
    if (lost) this.dropSet.add(ev);
    const i = this.pendingN++;
    this.pending[i] = ev; this.pendingTs[i] = ts; this.pendingCpu[i] = cpu;
    if (ts < this.pendingMin) this.pendingMin = ts;
  }

  /** How the loss from now on is reported: as `dropped` (ring-buffer overflow) or as a seq gap (a lost spool segment). */
  lossMode(mode: LossWindow['mode'], scenario: string): void {
    this.dropMode = mode;
    this.dropScenario = scenario;
  }

  /** The collector has events to flush or a heartbeat to send only for an end (host clock) past this time... */
  get dueAt(): number { return Math.min(this.pendingMin, this.lastCutNs + HEARTBEAT_NS); }

  /** The end of the run: the collector keeps reading from `from` every `stepNs` until every event emitted is
   * delivered, then cuts a last batch (a heartbeat when empty: host time reaches `end`). Returns the last host time. */
  finish(from: number, end: number, stepNs: number, out: EventBatch[]): number {
    for (let e = from; this.pendingN > 0; e += stepNs) this.cut(e, out);
    if (this.cur.length > 0) this.closeBatch(out, Math.max(this.curMax, end, this.lastCutNs));
    else if (this.lastCutNs < end) this.closeBatch(out, end);
    return Math.max(this.lastCutNs, this.maxTsEmitted);
  }

  /** The collector reads its buffers at `absEnd` (host clock): flush what is ready, cut the batch when due. */
  cut(absEnd: number, out: EventBatch[]): void {
    this.flush(absEnd, out);
    if (absEnd >= this.closeAt || absEnd - this.lastCutNs >= HEARTBEAT_NS) this.closeBatch(out, absEnd);
  }

  /** ...and closes the open batch once the end reaches this time (its flush interval, or a second since the last
   * batch: the collector sends one at least every second). */
  get closeAt(): number {
    return this.cur.length > 0 ? Math.min(this.curOpenedTs + this.flushIntervalNs, this.lastCutNs + HEARTBEAT_NS) : Infinity;
  }

  private flush(absEnd: number, out: EventBatch[]): void {
    if (this.pendingMin >= absEnd) return;
    // Take the ready events out, keeping the rest in emission order.
    const pending = this.pending, pts = this.pendingTs, pcpu = this.pendingCpu, count = this.pendingN;
    if (count > order.length) {
      const cap = Math.max(count, 2 * order.length);
      keyW = new Float64Array(cap); keyR = new Float64Array(cap); keyT = new Float64Array(cap); order = new Int32Array(cap);
    }
    // Per-CPU interleaving: within each read window the collector drains CPU after CPU, so events are in
    // ts order per CPU but not across CPUs (displacement < PERCPU_WINDOW_NS, far below the 2 s lateness).
    const t0 = this.t0;
    let n = 0, kept = 0, min = Infinity;
    for (let i = 0; i < count; i++) {
      const ev = pending[i]!, ts = pts[i]!;
      if (ts < absEnd) {
        const w = Math.floor((ts - t0) / PERCPU_WINDOW_NS);
        keyW[n] = w;
        keyR[n] = (Math.imul(pcpu[i]! + 1, 0x9e3779b1) ^ Math.imul(w, 0x85ebca6b)) >>> 0;
        keyT[n] = ts;
        ready[n++] = ev;
      } else {
        pending[kept] = ev; pts[kept] = ts; pcpu[kept] = pcpu[i]!; kept++;
        if (ts < min) min = ts;
      }
    }
    for (let i = kept; i < count; i++) pending[i] = undefined;
    this.pendingN = kept;
    this.pendingMin = min;
    // Order by (w, r, tsNs, emission order): a total order, so any sort gives the same result. Insertion
    // sort: ready events come nearly in order and few at a time.
    for (let i = 0; i < n; i++) {
      const w = keyW[i]!, r = keyR[i]!, t = keyT[i]!;
      let j = i;
      for (; j > 0; j--) {
        const o = order[j - 1]!;
        const dw = keyW[o]! - w;
        if (dw < 0 || (dw === 0 && (keyR[o]! < r || (keyR[o] === r && keyT[o]! <= t)))) break;
        order[j] = o;
      }
      order[j] = i;
    }
    // The collector cuts a full batch while reading at absEnd (the end of the last event read if it runs later).
    const cut = absEnd === Infinity ? -Infinity : absEnd;
    for (let i = 0; i < n; i++) { const k = order[i]!; this.push(ready[k]!, keyT[k]!, out, cut); }
    for (let i = 0; i < n; i++) ready[i] = undefined;
  }

  private push(ev: Event, ts: number, out: EventBatch[], cut: number): void {
    if (this.dropSet.size > 0 && this.dropSet.has(ev)) {
      this.dropSet.delete(ev);
      if (this.cur.length > 0) this.closeBatch(out, Math.max(cut, this.curMax));
      if (!this.lossOpen) this.lossOpen = { maxBefore: Math.max(this.maxTsEmitted, this.lastCutNs), mode: this.dropMode, lost: 0, scenario: this.dropScenario };
      this.lossOpen.lost++;
      this.stats.lostEvents++;
      // Ring-buffer overflow: the agent counts what it lost (dropped); a lost spool segment shows as a seq gap.
      if (this.lossOpen.mode === 'dropped') this.pendingDropped++; else this.nextSeq++;
      this.lostRun++;
      return;
    }
    if (this.cur.length === 0) this.curOpenedTs = ts;
    this.cur.push(ev);
    if (ts < this.curMin) this.curMin = ts;
    if (ts > this.curMax) this.curMax = ts;
    if (this.cur.length >= this.batchSize) this.closeBatch(out, Math.max(cut, this.curMax));
  }

  /** Out of line: rare (ring-buffer loss scenarios only). The lost events lie between the host time before the loss
   * and the oldest event of the batch that reports it (its clock, if it has none), each widened by the lateness. */
  private closeLossWindow(min: number): void {
    const lo = this.lossOpen!;
    this.lossWindows.push({ hostname: this.host.hostname!, bootId: this.host.bootId!, fromTsNs: lo.maxBefore - 2 * S, toTsNs: min + 2 * S, lost: lo.lost, mode: lo.mode, scenario: lo.scenario });
    this.lossOpen = undefined;
  }

  /** Cuts the open batch (or, with no events, a heartbeat) at the collector's clock `nowNs`. */
  private closeBatch(out: EventBatch[], nowNs: number): void {
    const events = this.cur, min = this.curMin, max = this.curMax;
    if (nowNs < this.lastCutNs) nowNs = this.lastCutNs; // CLOCK_MONOTONIC
    this.cur = [];
    this.curMin = Infinity; this.curMax = -Infinity;
    out.push({ host: this.host, firstSeq: this.nextSeq, dropped: this.pendingDropped, events, nowNs });
    if (this.lossOpen) this.closeLossWindow(events.length > 0 ? min : Math.max(this.maxTsEmitted, this.lastCutNs, nowNs));
    this.lastCutNs = nowNs;
    if (events.length === 0) this.stats.heartbeats++;
    this.nextSeq += events.length;
    this.pendingDropped = 0;
    if (max > this.maxTsEmitted) this.maxTsEmitted = max;
    this.stats.batches++;
    this.stats.events += events.length;
  }
}
