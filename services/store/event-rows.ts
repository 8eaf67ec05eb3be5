// Raw-event rows as the store returns them (queries.ts EVENT_ROW_SELECT: columns of `events` / `finding_events`, enums
// by name, 64-bit values as strings) back into the events they were.
import { Backing, TriggerKind, ZapTarget, type DeviceInfo, type Event, type HostInfo } from '../core/model.js';

const num = (v: unknown): number => Number(v ?? 0);
const enumValue = (values: object, name: unknown): number => ((values as Record<string, number | undefined>)[String(name)] ?? 0);

/** A raw-event row of the store (readTraceRange) as the event it was. A kind this version does not know comes back
 * without a body (the timeline counts it as not drawn). */
export function eventFromRow(r: Record<string, unknown>): { host: HostInfo; seq: number; event: Event } {
  const ev: Event = { tsNs: num(r.tsNs), cpu: num(r.cpu), pid: num(r.pid), tid: num(r.tid), comm: String(r.comm ?? ''), device: String(r.device ?? '') };
  // the who and which code path ids (migration 7): 0 is none, left absent as in the event
  if (num(r.cgroupId) > 0) ev.cgroupId = num(r.cgroupId);
  if (num(r.stackId) > 0) ev.stackId = num(r.stackId);
  switch (r.kind) {
    case 'deviceInfo': {
      // the optional fields are NULL when the collector did not read them: absent, as in the event
      const info: DeviceInfo = { driver: String(r.driver ?? ''), dmabufBarMmap: !!r.dmabufBarMmap };
      if (r.zapBarsOnRevoke != null) info.zapBarsOnRevoke = !!r.zapBarsOnRevoke;
      if (r.memoryEnabled != null) info.memoryEnabled = !!r.memoryEnabled;
      if (r.powerState != null) info.powerState = num(r.powerState);
      if (r.deviceRevoked != null) info.revoked = !!r.deviceRevoked;
      if (r.openCount != null) info.openCount = num(r.openCount);
      if (r.noCommandMemory != null) info.noCommandMemory = !!r.noCommandMemory;
      if (r.customVmOpsBars != null) info.customVmOpsBars = num(r.customVmOpsBars);
      ev.deviceInfo = info;
      break;
    }
    case 'lockAcquire': ev.lockAcquire = { waitNs: num(r.waitNs) }; break;
    case 'lockRelease': ev.lockRelease = {}; break;
    case 'zap': ev.zap = { start: num(r.start), length: num(r.length), durationNs: num(r.durationNs), target: enumValue(ZapTarget, r.zapTarget),
      ...(typeof r.hadVmas === 'boolean' ? { hadVmas: r.hadVmas } : {}) }; break;
    case 'dmabufRevoke': ev.dmabufRevoke = { revoked: !!r.revoked, dmabufCount: num(r.dmabufCount), durationNs: num(r.durationNs),
      ...(typeof r.deviceHasVmas === 'boolean' ? { deviceHasVmas: r.deviceHasVmas } : {}) }; break;
    case 'moveNotify': ev.moveNotify = { dmabufId: num(r.dmabufId), importerCount: num(r.importerCount), durationNs: num(r.durationNs) }; break;
    case 'barMmap': ev.barMmap = { bar: num(r.bar), backing: enumValue(Backing, r.backing), mappingId: num(r.mappingId), length: num(r.mapLength),
      snapshot: !!r.snapshot }; break;
    case 'barMunmap': ev.barMunmap = { bar: num(r.bar), mappingId: num(r.mappingId) }; break;
    case 'barFault': ev.barFault = { bar: num(r.bar), mappingId: num(r.mappingId), ok: !!r.ok }; break;
    case 'trigger': ev.trigger = { kind: enumValue(TriggerKind, r.trigger), groupId: num(r.groupId) }; break;
    case 'triggerEnd': ev.triggerEnd = { kind: enumValue(TriggerKind, r.trigger), ret: num(r.ret) }; break;
    case 'powerTransition': ev.powerTransition = { from: num(r.powerFrom), to: num(r.powerTo), durationNs: num(r.durationNs) }; break;
    case 'resetFunction': ev.resetFunction = { ret: num(r.ret), durationNs: num(r.durationNs) }; break;
    default: break;
  }
  return { host: { hostname: String(r.hostname ?? ''), bootId: String(r.bootId ?? '') }, seq: num(r.seq), event: ev };
}
