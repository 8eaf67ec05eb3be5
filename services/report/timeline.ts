// The timeline of a trace: what each device and each task did, as slices (a span of time) and instants, built
// from the raw events plus the correlator's episodes and findings. Pure. One model for two views: the Chrome /
// Perfetto trace-event export (trace-events.ts) and the HTML report's SVG timelines (svg.ts).
//
// Per device: memory_lock wait (acquire − wait_ns .. acquire) and hold (LockAcquire .. LockRelease: one episode,
// annotated with the correlator's Episode), trigger spans (Trigger .. TriggerEnd of the same task and kind: the
// ioctl or config write that asked for the revoke), zaps (unmap_mapping_range / zap_vma_ptes), DMABUF revokes
// (vfio_pci_dma_buf_move), move_notify per DMABUF (dma_buf_move_notify / dma_buf_invalidate_mappings: one call
// per DMABUF, its importer_count importers), power transitions (vfio_pci_set_power_state), function resets
// (pci_try_reset_function / pci_reset_bus), mappings and faults, DeviceInfo snapshots, and the findings.
// Per task (hostname, boot, pid, tid): the same spans it ran. Per host: loss (dropped events, seq gaps).
import { Backing, FindingKind, Severity, TriggerKind, VFIO_PCI_OFFSET_SHIFT, ZapTarget, bodyOf,
  type Episode, type Event, type Finding, type HostInfo } from '../core/model.js';
import { episodeToJson, findingToJson } from '../trace/json.js';

export type OwnerKind = 'host' | 'device' | 'task';

/** What a group of tracks belongs to (a process in the trace-event export). */
export interface TimelineOwner {
  kind: OwnerKind;
  key: string;
  hostname: string;
  bootId: string;
  /** device: PCI address; task: '' */
  device: string;
  /** device: the driver when seen (DeviceInfo or an episode) */
  driver: string;
  /** task: the Linux pid (tgid) and comm */
  pid: number;
  comm: string;
}

/** A named row of an owner: a thread in the trace-event export. `order` sorts an owner's tracks. */
export interface TimelineTrack { key: string; owner: TimelineOwner; name: string; order: number; tid: number }

export interface TimelineItem {
  track: TimelineTrack;
  startNs: number;
  /** ≥ 0 for a slice; undefined for an instant. */
  durNs?: number;
  name: string;
  /** Category: lock, trigger, zap, dmabuf, move, power, reset, mapping, device, finding, loss. */
  cat: string;
  args: Record<string, unknown>;
  /** An instant that belongs to the whole owner (trace-event scope "p"), not to one track. */
  ownerScoped?: boolean;
}

export interface Timeline {
  owners: TimelineOwner[];
  tracks: TimelineTrack[];
  items: TimelineItem[];
  /** Hold slices by episode id (the correlator's episodes drawn). */
  holds: Map<string, TimelineItem>;
  /** Finding instants by finding id. */
  findings: Map<string, TimelineItem>;
  minNs: number;
  maxNs: number;
  /** Events that drew nothing (a body this version does not know, or a stored kind without its fields). */
  undrawn: number;
}

export class TimelineLimitError extends Error {
  override readonly name = 'TimelineLimitError';
}

export interface TimelineOptions {
  /** Most events kept; one more is a TimelineLimitError. Default 500 000: each draws one or two items, about 2.5 KB
   * of process memory per event while building, and about 530 bytes of JSON (a file Perfetto's UI still loads). */
  maxEvents?: number;
  /** Keep only the events of these devices (keys from deviceKey()); undefined = every device. */
  devices?: ReadonlySet<string>;
  /** Added to a boot's ts_ns to place it on the timeline's axis (e.g. its wall-clock offset); default 0. Events,
   * episodes and findings keep their own ts_ns in their args. */
  clockShift?: (hostname: string, bootId: string) => number;
}

export const DEFAULT_MAX_EVENTS = 500_000;

export function deviceKey(hostname: string, bootId: string, device: string): string {
  return `${hostname}\u0000${bootId}\u0000${device}`;
}

/** Track order inside a device (top to bottom). */
const DEVICE_TRACKS = ['findings', 'triggers', 'memory_lock wait', 'memory_lock held', 'zap', 'DMABUF revoke', 'move_notify',
  'power', 'reset', 'mappings'] as const;

/** PCI power states as pci_power_t numbers them. */
const D_STATES = ['D0', 'D1', 'D2', 'D3hot', 'D3cold'];
export function powerStateName(n: number): string { return D_STATES[n] ?? `D?${n}`; }

const enumName = (values: object, n: number | null | undefined): string =>
  (values as Record<number, string | undefined>)[n ?? 0] ?? String(n ?? 0);

/** The BARs (0..5) a zap's range reaches: [start, start+length) against [b<<40, (b+1)<<40); length 0: to the end. */
export function zapBars(start: number, length: number): number[] {
  const region = 2 ** VFIO_PCI_OFFSET_SHIFT;
  const end = length === 0 ? Infinity : start + length;
  const out: number[] = [];
  for (let b = 0; b < 6; b++) if (start < (b + 1) * region && end > b * region) out.push(b);
  return out;
}

/** BAR0-5, BAR2,BAR4, no BAR. */
export function barsLabel(bars: number[]): string {
  if (bars.length === 0) return 'no BAR';
  const contiguous = bars.every((b, i) => i === 0 || b === bars[i - 1]! + 1);
  return contiguous && bars.length > 1 ? `BAR${bars[0]}-${bars[bars.length - 1]}` : bars.map((b) => `BAR${b}`).join(',');
}

interface OpenHold { item: TimelineItem; tid: number; key: string }
interface PendingTrigger { tsNs: number; kind: number; groupId: number; pid: number; tid: number; comm: string; seq?: number }

/** An event as kept until build(): the reader's fields copied. */
type KeptEvent = Event & { tsNs: number; seq: number; order: number; tid: number; pid: number; comm: string };

interface DeviceState {
  owner: TimelineOwner;
  /** its host's clockShift */
  shift: number;
  events: KeptEvent[];
  open?: OpenHold;
  /** tid → triggers announced and not yet returned (TriggerEnd). */
  pending: Map<number, PendingTrigger[]>;
}

/** lastNs: the host's newest time seen (event or now_ns), as ts_ns; shift: its clockShift. */
interface HostState { owner: TimelineOwner; nextSeq?: number; lastNs: number; shift: number }

/** Builds a Timeline from events (in any order within a host: slices are placed by their own times), episodes,
 * findings and open locks. */
export class TimelineBuilder {
  private readonly owners = new Map<string, TimelineOwner>();
  private readonly tracks = new Map<string, TimelineTrack>();
  private readonly items: TimelineItem[] = [];
  private readonly devices = new Map<string, DeviceState>();
  private readonly hosts = new Map<string, HostState>();
  private readonly episodes = new Map<string, Episode>();
  private readonly findingList: Finding[] = [];
  private readonly openEpisodes = new Map<string, string>();
  private readonly holdsByAcquire = new Map<string, TimelineItem>();
  /** releases with no acquire before them, by device and ts_ns: an episode that began before observation */
  private readonly releasesAlone = new Map<string, TimelineItem>();
  /** device hold slice → the same hold on its task's track */
  private readonly taskCopies = new Map<TimelineItem, TimelineItem>();
  private readonly maxEvents: number;
  private kept = 0;
  private minNs = Infinity;
  private maxNs = -Infinity;
  private undrawn = 0;
  private built = false;

  constructor(private readonly opts: TimelineOptions = {}) {
    this.maxEvents = opts.maxEvents ?? DEFAULT_MAX_EVENTS;
  }

  /** A batch's header: loss (EventBatch.dropped, or a gap in seq) is drawn on the host. `firstTsNs`: where to draw it
   * (the batch's first event, or its now_ns). */
  batch(host: HostInfo, firstSeq: number, count: number, dropped: number, firstTsNs: number, nowNs = 0): void {
    const h = this.host(host.hostname ?? '', host.bootId ?? '');
    if (nowNs > h.lastNs) h.lastNs = nowNs;
    const gap = h.nextSeq !== undefined && firstSeq > h.nextSeq ? firstSeq - h.nextSeq : 0;
    if (dropped > 0 || gap > 0) {
      const at = firstTsNs || nowNs || h.lastNs;
      if (at > 0) {
        this.push({ track: this.track(h.owner, 'loss', 0), startNs: at + h.shift, name: `loss: ${dropped + gap} events`, cat: 'loss',
          args: { dropped, seqGap: gap, firstSeq }, ownerScoped: true });
      }
    }
    const next = firstSeq + count;
    if (h.nextSeq === undefined || next > h.nextSeq) h.nextSeq = next;
  }

  /** One event of `host`; `seq` when known (firstSeq + index). Kept (copied: readers reuse their event objects)
   * and drawn in build(), in ts order per device: events may arrive out of order (per-CPU buffers). */
  event(host: HostInfo, ev: Event, seq?: number): void {
    const hostname = host.hostname ?? '';
    const bootId = host.bootId ?? '';
    const device = ev.device ?? '';
    const ts = Number(ev.tsNs ?? 0);
    const dkey = deviceKey(hostname, bootId, device);
    if (this.opts.devices && !this.opts.devices.has(dkey)) return;
    if (this.kept >= this.maxEvents) throw new TimelineLimitError(`the timeline has more than ${this.maxEvents} events`);
    this.kept++;
    const h = this.host(hostname, bootId);
    if (ts > h.lastNs) h.lastNs = ts;
    const d = this.device(hostname, bootId, device);
    const kind = bodyOf(ev);
    const body = kind ? (ev[kind] as object | null | undefined) : undefined;
    d.events.push({ tsNs: ts, seq: seq ?? -1, order: this.kept, tid: ev.tid ?? 0, pid: ev.pid ?? 0, comm: ev.comm ?? '', device,
      ...(kind && body ? { [kind]: { ...body } } : {}) });
  }

  private draw(d: DeviceState, ev: KeptEvent): void {
    const { hostname, bootId, device } = d.owner;
    const ts = ev.tsNs + d.shift;
    const seq = ev.seq >= 0 ? ev.seq : undefined;
    const tid = ev.tid ?? 0;
    const pid = ev.pid ?? 0;
    const comm = ev.comm ?? '';
    const who = { device, tid, pid, comm, ...(seq === undefined ? {} : { seq }) };
    const task = tid || pid ? this.taskOwner(hostname, bootId, pid, comm) : undefined;
    const span = (trackName: string, start: number, durNs: number, name: string, cat: string, args: Record<string, unknown>): TimelineItem => {
      const item = this.push({ track: this.track(d.owner, trackName), startNs: start, durNs, name, cat, args });
      if (task) this.push({ track: this.taskTrack(task, tid, comm), startNs: start, durNs, name, cat, args });
      return item;
    };
    const mark = (trackName: string, name: string, cat: string, args: Record<string, unknown>, onTask = false): void => {
      this.push({ track: this.track(d.owner, trackName), startNs: ts, name, cat, args });
      if (onTask && task) this.push({ track: this.taskTrack(task, tid, comm), startNs: ts, name, cat, args });
    };
    switch (bodyOf(ev)) {
      case 'lockAcquire': {
        const waitNs = Number(ev.lockAcquire!.waitNs ?? 0);
        if (d.open) this.closeHold(d, ts, { released: false, note: 'another acquire came before a release (events lost?)' });
        if (waitNs > 0) span('memory_lock wait', ts - waitNs, waitNs, 'lock wait', 'lock', { ...who, waitNs });
        const item = this.push({ track: this.track(d.owner, 'memory_lock held'), startNs: ts, durNs: 0, name: 'memory_lock held', cat: 'lock',
          args: { ...who, waitNs } });
        const key = `${deviceKey(hostname, bootId, device)}\u0000${ev.tsNs}`;
        d.open = { item, tid, key };
        this.holdsByAcquire.set(key, item);
        break;
      }
      case 'lockRelease':
        if (d.open) this.closeHold(d, ts, { releaseTid: tid });
        else {
          // the write section began before the collector saw it (or its acquire was lost)
          const item = this.push({ track: this.track(d.owner, 'memory_lock held'), startNs: ts, name: 'release (acquire not seen)', cat: 'lock',
            args: { ...who } });
          this.releasesAlone.set(`${deviceKey(hostname, bootId, device)}\u0000${ev.tsNs}`, item);
        }
        break;
      case 'zap': {
        const z = ev.zap!;
        const start = Number(z.start ?? 0), length = Number(z.length ?? 0), dur = Number(z.durationNs ?? 0);
        const target = z.target === ZapTarget.DMABUF ? 'DMABUF' : 'DEVICE';
        const bars = zapBars(start, length);
        span('zap', ts, dur, target === 'DMABUF' ? 'zap DMABUF mapping' : `zap ${barsLabel(bars)}`, 'zap',
          { ...who, target, start, length, bars, durationNs: dur, ...(typeof z.hadVmas === 'boolean' ? { hadVmas: z.hadVmas } : {}) });
        break;
      }
      case 'dmabufRevoke': {
        const r = ev.dmabufRevoke!;
        const dur = Number(r.durationNs ?? 0), count = r.dmabufCount ?? 0;
        span('DMABUF revoke', ts, dur, `${r.revoked ? 'revoke' : 'unrevoke'} ${count} DMABUF${count === 1 ? '' : 's'}`, 'dmabuf',
          { ...who, revoked: !!r.revoked, dmabufCount: count, durationNs: dur,
            ...(typeof r.deviceHasVmas === 'boolean' ? { deviceHasVmas: r.deviceHasVmas } : {}) });
        break;
      }
      case 'moveNotify': {
        const m = ev.moveNotify!;
        const dur = Number(m.durationNs ?? 0), importers = m.importerCount ?? 0, id = Number(m.dmabufId ?? 0);
        span(`move_notify dmabuf ${id}`, ts, dur, `move_notify ${importers} importer${importers === 1 ? '' : 's'}`, 'move',
          { ...who, dmabufId: id, importerCount: importers, durationNs: dur });
        break;
      }
      case 'powerTransition': {
        const p = ev.powerTransition!;
        const dur = Number(p.durationNs ?? 0);
        span('power', ts, dur, `${powerStateName(p.from ?? 0)} → ${powerStateName(p.to ?? 0)}`, 'power',
          { ...who, from: powerStateName(p.from ?? 0), to: powerStateName(p.to ?? 0), durationNs: dur });
        break;
      }
      case 'resetFunction': {
        const r = ev.resetFunction!;
        const dur = Number(r.durationNs ?? 0);
        span('reset', ts, dur, `reset ret=${r.ret ?? 0}`, 'reset', { ...who, ret: r.ret ?? 0, durationNs: dur });
        break;
      }
      case 'trigger': {
        const t = ev.trigger!;
        const p: PendingTrigger = { tsNs: ts, kind: t.kind ?? 0, groupId: Number(t.groupId ?? 0), pid, tid, comm, ...(seq === undefined ? {} : { seq }) };
        const list = d.pending.get(tid);
        if (list) list.push(p);
        else d.pending.set(tid, [p]);
        break;
      }
      case 'triggerEnd': {
        const e = ev.triggerEnd!;
        const list = d.pending.get(tid);
        const i = list ? findLastIndex(list, (p) => p.kind === (e.kind ?? 0)) : -1;
        if (list && i >= 0) {
          const [p] = list.splice(i, 1);
          if (list.length === 0) d.pending.delete(tid);
          this.triggerSpan(d, p!, ts, e.ret ?? 0);
        } else {
          mark('triggers', `${enumName(TriggerKind, e.kind)} returned ${e.ret ?? 0}`, 'trigger',
            { ...who, kind: enumName(TriggerKind, e.kind), ret: e.ret ?? 0, note: 'no Trigger seen' }, true);
        }
        break;
      }
      case 'barMmap': {
        const m = ev.barMmap!;
        mark('mappings', `mmap BAR${m.bar ?? 0} ${enumName(Backing, m.backing)}${m.snapshot ? ' (snapshot)' : ''}`, 'mapping',
          { ...who, bar: m.bar ?? 0, backing: enumName(Backing, m.backing), mappingId: Number(m.mappingId ?? 0), length: Number(m.length ?? 0), snapshot: !!m.snapshot });
        break;
      }
      case 'barMunmap': {
        const m = ev.barMunmap!;
        mark('mappings', `munmap BAR${m.bar ?? 0}`, 'mapping', { ...who, bar: m.bar ?? 0, mappingId: Number(m.mappingId ?? 0) });
        break;
      }
      case 'barFault': {
        const f = ev.barFault!;
        mark('mappings', `fault BAR${f.bar ?? 0} ${f.ok ? 'ok' : 'failed'}`, 'mapping', { ...who, bar: f.bar ?? 0, mappingId: Number(f.mappingId ?? 0), ok: !!f.ok });
        break;
      }
      case 'deviceInfo': {
        const info = ev.deviceInfo!;
        if (info.driver) d.owner.driver = info.driver;
        const args: Record<string, unknown> = { ...who, driver: info.driver ?? '', dmabufBarMmap: !!info.dmabufBarMmap };
        for (const k of ['zapBarsOnRevoke', 'memoryEnabled', 'powerState', 'revoked', 'openCount', 'noCommandMemory', 'customVmOpsBars'] as const) {
          const v = info[k];
          if (v !== undefined && v !== null) args[k] = k === 'powerState' ? powerStateName(v as number) : v;
        }
        mark('mappings', 'DeviceInfo', 'device', args);
        break;
      }
      default:
        this.undrawn++;
    }
  }

  /** The correlator's episode: annotates the hold slice of its LockAcquire, or draws it when that event is not here. */
  episode(ep: Episode): void { this.episodes.set(ep.episodeId, ep); }

  finding(f: Finding): void { this.findingList.push(f); }

  /** An episode still holding memory_lock at the end (Correlator.openLocks()). */
  openLock(o: { hostname: string; bootId: string; device: string; acquireTsNs: number; episodeId: string }): void {
    this.openEpisodes.set(`${deviceKey(o.hostname, o.bootId, o.device)}\u0000${o.acquireTsNs}`, o.episodeId);
  }

  /** Draws what was given (once: the builder is spent afterwards). */
  build(): Timeline {
    if (this.built) throw new Error('TimelineBuilder.build(): already built');
    this.built = true;
    for (const d of this.devices.values()) {
      const events = d.events.sort((a, b) => a.tsNs - b.tsNs || a.seq - b.seq || a.order - b.order);
      d.events = [];
      for (const ev of events) this.draw(d, ev);
    }
    // holds still open: to the episode's release when the correlator saw it (a store range that ends inside the
    // episode), else to the host's last time seen (heartbeats included)
    const episodeAt = new Map<string, Episode>();
    for (const ep of this.episodes.values()) episodeAt.set(`${deviceKey(ep.hostname, ep.bootId, ep.device)}\u0000${ep.acquireTsNs}`, ep);
    for (const d of this.devices.values()) {
      if (d.open) {
        const ep = episodeAt.get(d.open.key);
        const h = this.hosts.get(hostKey(d.owner.hostname, d.owner.bootId))!;
        if (ep && ep.releaseTsNs >= ep.acquireTsNs) this.closeHold(d, ep.releaseTsNs + d.shift, { note: 'release not among the events: the episode\'s' });
        else this.closeHold(d, Math.max(h.lastNs + h.shift, d.open.item.startNs), { open: true, note: 'no release seen by the end of the input' });
      }
      for (const list of d.pending.values()) for (const p of list) this.triggerMark(d, p);
      d.pending.clear();
    }
    for (const [key, id] of this.openEpisodes) {
      const item = this.holdsByAcquire.get(key);
      if (!item) continue;
      item.args.episodeId = id;
      const copy = this.taskCopies.get(item);
      if (copy) copy.args.episodeId = id;
    }
    const holds = new Map<string, TimelineItem>();
    // episodes whose LockAcquire is not among the events (a store range that starts inside them): drawn from the episode
    for (const ep of this.episodes.values()) {
      const key = `${deviceKey(ep.hostname, ep.bootId, ep.device)}\u0000${ep.acquireTsNs}`;
      // an episode that began before observation has no acquire (acquire_ts_ns 0): its release stands for it
      const item = ep.acquireTsNs === 0 ? this.releasesAlone.get(`${deviceKey(ep.hostname, ep.bootId, ep.device)}\u0000${ep.releaseTsNs}`)
        : this.holdsByAcquire.get(key);
      if (item) {
        this.annotate(item, ep);
        holds.set(ep.episodeId, item);
        continue;
      }
      const dkey = deviceKey(ep.hostname, ep.bootId, ep.device);
      if (this.opts.devices && !this.opts.devices.has(dkey)) continue;
      const d = this.device(ep.hostname, ep.bootId, ep.device);
      if (ep.acquireTsNs === 0) {
        const release = this.push({ track: this.track(d.owner, 'memory_lock held'), startNs: ep.releaseTsNs + d.shift, name: '', cat: 'lock',
          args: { device: ep.device, pid: ep.pid, comm: ep.comm, source: 'episode' } });
        this.annotate(release, ep);
        holds.set(ep.episodeId, release);
        continue;
      }
      if (ep.lockWaitNs > 0) {
        this.push({ track: this.track(d.owner, 'memory_lock wait'), startNs: ep.acquireTsNs - ep.lockWaitNs + d.shift, durNs: ep.lockWaitNs, name: 'lock wait', cat: 'lock',
          args: { device: ep.device, pid: ep.pid, comm: ep.comm, waitNs: ep.lockWaitNs, source: 'episode' } });
      }
      const hold = this.push({ track: this.track(d.owner, 'memory_lock held'), startNs: ep.acquireTsNs + d.shift,
        durNs: Math.max(0, ep.releaseTsNs - ep.acquireTsNs), name: '', cat: 'lock', args: { device: ep.device, pid: ep.pid, comm: ep.comm, source: 'episode' } });
      this.annotate(hold, ep);
      holds.set(ep.episodeId, hold);
    }
    const findings = new Map<string, TimelineItem>();
    for (const f of this.findingList) {
      const dkey = deviceKey(f.hostname, f.bootId, f.device);
      if (this.opts.devices && !this.opts.devices.has(dkey)) continue;
      const d = this.device(f.hostname, f.bootId, f.device);
      if (!d.owner.driver && f.driver) d.owner.driver = f.driver;
      const kind = enumName(FindingKind, f.kind), severity = enumName(Severity, f.severity);
      findings.set(f.findingId, this.push({ track: this.track(d.owner, 'findings'), startNs: f.tsNs + d.shift,
        name: `${kind} ${severity}${f.inconclusive ? ' (inconclusive)' : ''}`, cat: 'finding', args: { finding: findingToJson(f) } }));
    }
    const owners = [...this.owners.values()];
    return { owners, tracks: [...this.tracks.values()], items: this.items, holds, findings,
      minNs: Number.isFinite(this.minNs) ? this.minNs : 0, maxNs: Number.isFinite(this.maxNs) ? this.maxNs : 0, undrawn: this.undrawn };
  }

  private annotate(item: TimelineItem, ep: Episode): void {
    const trigger = enumName(TriggerKind, ep.trigger);
    item.name = ep.trigger ? `${trigger}${ep.revoke ? '' : ' (lock only)'}` : ep.revoke ? 'revoke' : 'lock only';
    if (ep.acquireTsNs === 0) item.name = `release: ${item.name}, began before observation`;
    item.args.episode = episodeToJson(ep);
    item.args.episodeId = ep.episodeId;
    const copy = this.taskCopies.get(item);
    if (copy) {
      copy.name = item.name;
      copy.args.episodeId = ep.episodeId;
    }
    if (!item.track.owner.driver && ep.driver) item.track.owner.driver = ep.driver;
  }

  private closeHold(d: DeviceState, ts: number, extra: Record<string, unknown>): void {
    const o = d.open!;
    o.item.durNs = Math.max(0, ts - o.item.startNs);
    Object.assign(o.item.args, extra);
    if (ts > this.maxNs) this.maxNs = ts;
    const task = o.item.args.tid || o.item.args.pid
      ? this.taskOwner(d.owner.hostname, d.owner.bootId, o.item.args.pid as number, o.item.args.comm as string) : undefined;
    if (task) {
      // the task's copy names the episode (build() fills it in); its facts are on the device's slice
      const a = o.item.args;
      this.taskCopies.set(o.item, this.push({ track: this.taskTrack(task, o.tid, a.comm as string), startNs: o.item.startNs, durNs: o.item.durNs,
        name: 'memory_lock held', cat: 'lock', args: { device: a.device, tid: a.tid, pid: a.pid, comm: a.comm, ...extra } }));
    }
    d.open = undefined;
  }

  private triggerSpan(d: DeviceState, p: PendingTrigger, endNs: number, ret: number): void {
    const kind = enumName(TriggerKind, p.kind);
    const args = { device: d.owner.device, tid: p.tid, pid: p.pid, comm: p.comm, ...(p.seq === undefined ? {} : { seq: p.seq }), kind,
      groupId: p.groupId, ret };
    const name = `${kind}${ret ? ` ret=${ret}` : ''}`;
    const durNs = Math.max(0, endNs - p.tsNs);
    this.push({ track: this.track(d.owner, 'triggers'), startNs: p.tsNs, durNs, name, cat: 'trigger', args });
    if (!p.tid && !p.pid) return;
    const task = this.taskOwner(d.owner.hostname, d.owner.bootId, p.pid, p.comm);
    this.push({ track: this.taskTrack(task, p.tid, p.comm), startNs: p.tsNs, durNs, name, cat: 'trigger', args });
  }

  private triggerMark(d: DeviceState, p: PendingTrigger): void {
    const kind = enumName(TriggerKind, p.kind);
    const args = { device: d.owner.device, tid: p.tid, pid: p.pid, comm: p.comm, ...(p.seq === undefined ? {} : { seq: p.seq }), kind,
      groupId: p.groupId, note: 'no TriggerEnd seen' };
    this.push({ track: this.track(d.owner, 'triggers'), startNs: p.tsNs, name: kind, cat: 'trigger', args });
    if (!p.tid && !p.pid) return;
    const task = this.taskOwner(d.owner.hostname, d.owner.bootId, p.pid, p.comm);
    this.push({ track: this.taskTrack(task, p.tid, p.comm), startNs: p.tsNs, name: kind, cat: 'trigger', args });
  }

  private push(item: TimelineItem): TimelineItem {
    this.items.push(item);
    const end = item.startNs + (item.durNs ?? 0);
    if (item.startNs < this.minNs) this.minNs = item.startNs;
    if (end > this.maxNs) this.maxNs = end;
    return item;
  }

  private host(hostname: string, bootId: string): HostState {
    const key = hostKey(hostname, bootId);
    let h = this.hosts.get(key);
    if (!h) {
      h = { owner: this.owner('host', key, hostname, bootId, '', 0, ''), lastNs: 0, shift: this.opts.clockShift?.(hostname, bootId) ?? 0 };
      this.hosts.set(key, h);
    }
    return h;
  }

  private device(hostname: string, bootId: string, device: string): DeviceState {
    const key = deviceKey(hostname, bootId, device);
    let d = this.devices.get(key);
    if (!d) {
      const h = this.host(hostname, bootId);
      d = { owner: this.owner('device', `d\u0000${key}`, hostname, bootId, device, 0, ''), shift: h.shift, events: [], pending: new Map() };
      this.devices.set(key, d);
    }
    return d;
  }

  private taskOwner(hostname: string, bootId: string, pid: number, comm: string): TimelineOwner {
    return this.owner('task', `t\u0000${hostname}\u0000${bootId}\u0000${pid}`, hostname, bootId, '', pid, comm);
  }

  private owner(kind: OwnerKind, key: string, hostname: string, bootId: string, device: string, pid: number, comm: string): TimelineOwner {
    let o = this.owners.get(key);
    if (!o) {
      o = { kind, key, hostname, bootId, device, driver: '', pid, comm };
      this.owners.set(key, o);
    } else if (!o.comm && comm) {
      o.comm = comm;
    }
    return o;
  }

  private track(owner: TimelineOwner, name: string, tid = 0): TimelineTrack {
    const key = `${owner.key}\u0000${name}\u0000${tid}`;
    let t = this.tracks.get(key);
    if (!t) {
      const i = (DEVICE_TRACKS as readonly string[]).indexOf(name.startsWith('move_notify') ? 'move_notify' : name);
      t = { key, owner, name, order: i >= 0 ? i : DEVICE_TRACKS.length, tid };
      this.tracks.set(key, t);
    }
    return t;
  }

  /** A task's own track: one per tid of the process. */
  private taskTrack(owner: TimelineOwner, tid: number, comm: string): TimelineTrack {
    return this.track(owner, `${comm || 'task'} ${tid}`, tid);
  }
}

function hostKey(hostname: string, bootId: string): string { return `${hostname}\u0000${bootId}`; }

function findLastIndex<T>(a: T[], pred: (x: T) => boolean): number {
  for (let i = a.length - 1; i >= 0; i--) if (pred(a[i]!)) return i;
  return -1;
}

/** Places slices into lanes in which they nest properly (a child ends no later than its parent; siblings do not
 * overlap): what the trace-event format requires of the events on one thread. Slices are visited by start (longer
 * first on ties); each goes to the first lane whose open slices it nests in. Instants (no duration) nest anywhere.
 * Returns the lane of each slice, in the input order. */
export function assignLanes(slices: readonly { startNs: number; durNs?: number }[]): number[] {
  const order = slices.map((_, i) => i).sort((a, b) => compareSlices(slices[a]!, slices[b]!) || a - b);
  const lanes: number[][] = []; // per lane: stack of open ends
  const out = new Array<number>(slices.length);
  for (const i of order) {
    const s = slices[i]!;
    const end = s.startNs + (s.durNs ?? 0);
    let lane = 0;
    for (; lane < lanes.length; lane++) {
      const stack = lanes[lane]!;
      while (stack.length > 0 && stack[stack.length - 1]! <= s.startNs) stack.pop();
      if (stack.length === 0 || end <= stack[stack.length - 1]!) break;
    }
    if (lane === lanes.length) lanes.push([]);
    if (s.durNs !== undefined) lanes[lane]!.push(end);
    out[i] = lane;
  }
  return out;
}

/** Order of items on one track: by start, then longer first (a parent before its children), slices before instants. */
export function compareSlices(a: { startNs: number; durNs?: number }, b: { startNs: number; durNs?: number }): number {
  return a.startNs - b.startNs || (b.durNs ?? -1) - (a.durNs ?? -1);
}
