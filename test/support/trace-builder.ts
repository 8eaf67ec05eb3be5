// A small DSL for hand-written traces: times in microseconds from a base, one host per builder.
import {
  ALL_BARS_LENGTH, Backing, Capability, TriggerKind, ZapTarget,
  type Backing as BackingT, type DeviceInfo, type Event, type EventBatch, type HostInfo, type TriggerKind as TriggerKindT,
} from '../../services/core/model.js';

export type Era = '6.1' | '6.12' | '6.19' | '7.1' | 'series';

export const ERA_RELEASE: Record<Era, string> = {
  '6.1': '6.1.0-27-amd64',
  '6.12': '6.12.57+deb13-amd64',
  '6.19': '6.19.2-1-amd64',
  '7.1': '7.1.0-3-amd64',
  series: '7.2.0-rc3-vfio-dmabuf-mmap',
};

const BASE_NS = 1_000_000_000_000; // 1000 s of uptime
export const us = (t: number): number => BASE_NS + Math.round(t * 1000);

/** DeviceInfo state a current collector reads at start (BTF): memory enabled, D0, not revoked, open, not a VF. */
export const RUNNING: Partial<DeviceInfo> = { memoryEnabled: true, powerState: 0, revoked: false, openCount: 1, noCommandMemory: false };

export interface BuilderOptions {
  /** A collector that reports trigger returns (Capability.TRIGGER_END; default true). Older collectors do not. */
  triggerEnd?: boolean;
}

export class TraceBuilder {
  readonly events: Event[] = [];
  readonly host: HostInfo;

  constructor(readonly era: Era, hostname = 'host-a', bootId = 'boot-1', opts: BuilderOptions = {}) {
    const caps = [Capability.LOCK, Capability.ZAP, Capability.BAR_MMAP, Capability.BAR_FAULT, Capability.TRIGGER, Capability.DEVICE_INFO];
    if (era === '6.19' || era === '7.1' || era === 'series') caps.push(Capability.DMABUF_REVOKE, Capability.MOVE_NOTIFY);
    if (opts.triggerEnd ?? true) caps.push(Capability.TRIGGER_END);
    this.host = { hostname, bootId, kernelRelease: ERA_RELEASE[era], collectorVersion: 'test', capabilities: caps };
  }

  private add(t: number, device: string, body: Partial<Event>, tid = 100): this {
    this.events.push({ tsNs: us(t), cpu: tid % 2, pid: tid, tid, comm: 'qemu', device, ...body });
    return this;
  }

  /** DeviceInfo. zap_bars_on_revoke exists only with the series (elsewhere it is not sent); `state` defaults to a
   * running device as a current collector reads it (RUNNING); pass {} for an older collector's DeviceInfo. */
  info(t: number, dev: string, driver = 'vfio-pci', zapBarsOnRevoke: boolean | undefined = this.era === 'series' ? true : undefined,
    dmabufBarMmap = this.era === 'series', state: Partial<DeviceInfo> = RUNNING): this {
    return this.add(t, dev, { deviceInfo: { driver, ...(zapBarsOnRevoke === undefined ? {} : { zapBarsOnRevoke }), dmabufBarMmap, ...state } });
  }
  triggerEnd(t: number, dev: string, kind: TriggerKindT, ret = 0, tid = 100): this {
    return this.add(t, dev, { triggerEnd: { kind, ret } }, tid);
  }
  power(t: number, dev: string, from: number, to: number, durationNs = 10_000, tid = 100): this {
    return this.add(t, dev, { powerTransition: { from, to, durationNs } }, tid);
  }
  mmap(t: number, dev: string, id: number, opts: { bar?: number; backing?: BackingT; snapshot?: boolean } = {}): this {
    return this.add(t, dev, { barMmap: { bar: opts.bar ?? 0, backing: opts.backing ?? Backing.LEGACY, mappingId: id, length: 1 << 20, snapshot: !!opts.snapshot } });
  }
  munmap(t: number, dev: string, id: number, bar = 0): this {
    return this.add(t, dev, { barMunmap: { bar, mappingId: id } });
  }
  fault(t: number, dev: string, id: number, bar = 0, ok = true): this {
    return this.add(t, dev, { barFault: { bar, mappingId: id, ok } });
  }
  trigger(t: number, dev: string, kind: TriggerKindT, tid = 100, groupId = 0): this {
    return this.add(t, dev, { trigger: { kind, groupId } }, tid);
  }
  acquire(t: number, dev: string, tid = 100, waitNs = 1500): this {
    return this.add(t, dev, { lockAcquire: { waitNs } }, tid);
  }
  release(t: number, dev: string, tid = 100): this {
    return this.add(t, dev, { lockRelease: {} }, tid);
  }
  zap(t: number, dev: string, opts: { start?: number; length?: number; durationNs?: number; target?: number; hadVmas?: boolean; tid?: number } = {}): this {
    return this.add(t, dev, { zap: { start: opts.start ?? 0, length: opts.length ?? ALL_BARS_LENGTH, durationNs: opts.durationNs ?? 20_000,
      target: opts.target ?? ZapTarget.DEVICE, ...(opts.hadVmas === undefined ? {} : { hadVmas: opts.hadVmas }) } }, opts.tid ?? 100);
  }
  revoke(t: number, dev: string, revoked: boolean, opts: { count?: number; durationNs?: number; deviceHasVmas?: boolean; tid?: number } = {}): this {
    return this.add(t, dev, { dmabufRevoke: { revoked, dmabufCount: opts.count ?? 1, durationNs: opts.durationNs ?? 30_000,
      ...(opts.deviceHasVmas === undefined ? {} : { deviceHasVmas: opts.deviceHasVmas }) } }, opts.tid ?? 100);
  }
  move(t: number, dev: string, durationNs = 10_000, importers = 1, dmabufId = 1): this {
    return this.add(t, dev, { moveNotify: { dmabufId, importerCount: importers, durationNs } });
  }

  /** The events in ts order, cut into batches with contiguous seq numbers. With `heartbeatUntil` (µs), heartbeat
   * batches (no events, now_ns only) follow every second after the last event up to that time, as an idle collector
   * sends them. */
  batches(size = 64, opts: { firstSeq?: number; heartbeatUntil?: number } = {}): EventBatch[] {
    const sorted = [...this.events].sort((a, b) => (a.tsNs ?? 0) - (b.tsNs ?? 0));
    const out = cut(this.host, sorted, size, opts.firstSeq ?? 0);
    if (opts.heartbeatUntil !== undefined) {
      const next = (opts.firstSeq ?? 0) + sorted.length;
      const last = sorted.length > 0 ? sorted[sorted.length - 1]!.tsNs! : us(0);
      for (let t = last + 1e9; t <= us(opts.heartbeatUntil); t += 1e9) out.push({ host: this.host, firstSeq: next, dropped: 0, events: [], nowNs: t });
    }
    return out;
  }
}

export function cut(host: HostInfo, events: Event[], size: number, firstSeq = 0): EventBatch[] {
  const out: EventBatch[] = [];
  for (let i = 0; i < events.length; i += size) {
    const evs = events.slice(i, i + size);
    out.push({ host, firstSeq: firstSeq + i, dropped: 0, events: evs, nowNs: evs[evs.length - 1]!.tsNs! });
  }
  return out;
}

export { Backing, TriggerKind, ZapTarget };
