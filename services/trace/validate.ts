// Boundary checks on an EventBatch, after decoding (.pb) or JSON parsing (.jsonl), before anything
// downstream sees it. Type and range checks of single fields are the decoder's / JSON parser's job;
// these are the facts the correlator relies on (DESIGN §3, §8):
//  - host is set with a non-empty hostname and boot_id: state is keyed by (hostname, boot_id, device);
//  - 64-bit counters (first_seq, dropped) and every time/duration are non-negative integers;
//  - every event carries exactly one body (the oneof) and a device that looks like a PCI address
//    (domain:bus:slot.function, hex; the domain may be 4–8 digits, e.g. VMD's 10000:);
//  - ts_ns > 0 (CLOCK_MONOTONIC is never 0 when a probe fires; 0 means the field was never set);
//  - durations and lock waits below one day: anything longer is a unit error or garbage, not a revoke;
//  - BAR indexes 0..5 (vfio_pci_core_mmap() refuses the ROM and config regions);
//  - enum values are names the schema knows (the .pb decoder lets unknown numbers through);
//  - DmaBufRevoke.dmabuf_count, MoveNotify.importer_count are plain uint32 (checked by the codecs).
import { v1, type Event, type EventBatch } from '../core/model.js';
import { FieldError } from './errors.js';

export const MAX_DURATION_NS = 86_400 * 1e9;
const PCI_ADDRESS = /^[0-9a-fA-F]{4,8}:[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-7]$/;
const BODIES = ['deviceInfo', 'lockAcquire', 'lockRelease', 'zap', 'dmabufRevoke', 'moveNotify', 'barMmap',
  'barMunmap', 'barFault', 'trigger', 'triggerEnd', 'powerTransition', 'resetFunction'] as const;
const MAX_BAR = 5;
/** pci_power_t: PCI_D0 … PCI_D3cold (4); PCI_UNKNOWN (5) is what the kernel reports before it knows. */
const MAX_POWER_STATE = 5;
/** custom_vm_ops_bars: one bit per BAR 0..5. */
const BAR_MASK_LIMIT = 1 << (MAX_BAR + 1);

/** Where a field is: an event index (events[i]) or a path, plus the field. Built only for an error: the checks
 * run on every event of every batch the Kafka consumer reads, and eager path strings cost as much as decoding. */
type At = number | string;
const where = (at: At, field: string): string => {
  const base = typeof at === 'number' ? `events[${at}]` : at;
  return field ? `${base}.${field}` : base;
};

function nonNegativeInteger(v: unknown, at: At, field: string): void {
  if (v === undefined || v === null) return;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) {
    throw new FieldError(where(at, field), `expected a non-negative integer, got ${String(v)}`);
  }
}

function duration(v: unknown, at: At, field: string): void {
  nonNegativeInteger(v, at, field);
  if (typeof v === 'number' && v >= MAX_DURATION_NS) {
    throw new FieldError(where(at, field), `absurd duration ${v} ns (≥ 1 day)`);
  }
}

const enumNumbers = new Map<object, Set<unknown>>();

/** Generated enums map NAME → number (own keys) and number → NAME (inherited). */
function knownEnum(values: object, name: string, v: unknown, at: At, field: string): void {
  if (v === undefined || v === null) return;
  let numbers = enumNumbers.get(values);
  if (!numbers) enumNumbers.set(values, numbers = new Set(Object.values(values)));
  if (typeof v !== 'number' || !numbers.has(v)) {
    throw new FieldError(where(at, field), `unknown ${name} value ${String(v)}`);
  }
}

function powerState(v: unknown, at: At, field: string): void {
  nonNegativeInteger(v, at, field);
  if (typeof v === 'number' && v > MAX_POWER_STATE) throw new FieldError(where(at, field), `PCI power state ${v} outside D0..D3cold (0..4) and unknown (5)`);
}

function bar(v: unknown, at: At, field: string): void {
  nonNegativeInteger(v, at, field);
  if (typeof v === 'number' && v > MAX_BAR) throw new FieldError(where(at, field), `BAR index ${v} outside 0..${MAX_BAR}`);
}

/** Device strings already checked (bounded: cleared when full). */
const goodDevices = new Set<string>();

export function validateEvent(ev: Event, path: string): void {
  checkEvent(ev, path);
}

function checkEvent(ev: Event, path: At): void {
  // Not ev.body: the generated oneof getter walks Object.keys() on every call; named reads, not ev[b] in a loop
  // (keyed reads of ten names go megamorphic on the hot path).
  let body: (typeof BODIES)[number] | undefined;
  let bodies = 0;
  if (ev.deviceInfo != null) { bodies++; body = 'deviceInfo'; }
  if (ev.lockAcquire != null) { bodies++; body = 'lockAcquire'; }
  if (ev.lockRelease != null) { bodies++; body = 'lockRelease'; }
  if (ev.zap != null) { bodies++; body = 'zap'; }
  if (ev.dmabufRevoke != null) { bodies++; body = 'dmabufRevoke'; }
  if (ev.moveNotify != null) { bodies++; body = 'moveNotify'; }
  if (ev.barMmap != null) { bodies++; body = 'barMmap'; }
  if (ev.barMunmap != null) { bodies++; body = 'barMunmap'; }
  if (ev.barFault != null) { bodies++; body = 'barFault'; }
  if (ev.trigger != null) { bodies++; body = 'trigger'; }
  if (ev.triggerEnd != null) { bodies++; body = 'triggerEnd'; }
  if (ev.powerTransition != null) { bodies++; body = 'powerTransition'; }
  if (ev.resetFunction != null) { bodies++; body = 'resetFunction'; }
  if (bodies === 0) throw new FieldError(where(path, ''), 'event has no body (one of deviceInfo, lockAcquire, ..., trigger)');
  if (bodies > 1) {
    throw new FieldError(where(path, ''), `event has several bodies: ${BODIES.filter((b) => ev[b] !== undefined && ev[b] !== null).join(', ')}`);
  }
  if (!ev.tsNs || typeof ev.tsNs !== 'number' || !Number.isInteger(ev.tsNs) || ev.tsNs <= 0) {
    throw new FieldError(where(path, 'tsNs'), `must be a positive integer (CLOCK_MONOTONIC ns), got ${String(ev.tsNs ?? 0)}`);
  }
  if (!ev.device) throw new FieldError(where(path, 'device'), `missing on a ${body} event`);
  if (!goodDevices.has(ev.device)) {
    if (!PCI_ADDRESS.test(ev.device)) {
      throw new FieldError(where(path, 'device'), `${JSON.stringify(ev.device)} is not a PCI address like 0000:3b:00.0`);
    }
    if (goodDevices.size >= 65_536) goodDevices.clear();
    goodDevices.add(ev.device);
  }
  switch (body) {
    case 'lockAcquire': duration(ev.lockAcquire!.waitNs, path, 'lockAcquire.waitNs'); break;
    case 'zap': {
      const z = ev.zap!;
      nonNegativeInteger(z.start, path, 'zap.start');
      nonNegativeInteger(z.length, path, 'zap.length');
      duration(z.durationNs, path, 'zap.durationNs');
      knownEnum(v1.Zap.ZapTarget, 'ZapTarget', z.target, path, 'zap.target');
      break;
    }
    case 'dmabufRevoke': duration(ev.dmabufRevoke!.durationNs, path, 'dmabufRevoke.durationNs'); break;
    case 'moveNotify':
      nonNegativeInteger(ev.moveNotify!.dmabufId, path, 'moveNotify.dmabufId');
      duration(ev.moveNotify!.durationNs, path, 'moveNotify.durationNs');
      break;
    case 'barMmap': {
      const m = ev.barMmap!;
      bar(m.bar, path, 'barMmap.bar');
      knownEnum(v1.BarMmap.Backing, 'Backing', m.backing, path, 'barMmap.backing');
      nonNegativeInteger(m.mappingId, path, 'barMmap.mappingId');
      nonNegativeInteger(m.length, path, 'barMmap.length');
      break;
    }
    case 'barMunmap':
      bar(ev.barMunmap!.bar, path, 'barMunmap.bar');
      nonNegativeInteger(ev.barMunmap!.mappingId, path, 'barMunmap.mappingId');
      break;
    case 'barFault':
      bar(ev.barFault!.bar, path, 'barFault.bar');
      nonNegativeInteger(ev.barFault!.mappingId, path, 'barFault.mappingId');
      break;
    case 'trigger':
      knownEnum(v1.TriggerKind, 'TriggerKind', ev.trigger!.kind, path, 'trigger.kind');
      nonNegativeInteger(ev.trigger!.groupId, path, 'trigger.groupId');
      break;
    case 'triggerEnd': knownEnum(v1.TriggerKind, 'TriggerKind', ev.triggerEnd!.kind, path, 'triggerEnd.kind'); break;
    case 'powerTransition': {
      const p = ev.powerTransition!;
      powerState(p.from, path, 'powerTransition.from');
      powerState(p.to, path, 'powerTransition.to');
      duration(p.durationNs, path, 'powerTransition.durationNs');
      break;
    }
    case 'resetFunction': duration(ev.resetFunction!.durationNs, path, 'resetFunction.durationNs'); break;
    case 'deviceInfo': {
      const d = ev.deviceInfo!;
      powerState(d.powerState, path, 'deviceInfo.powerState');
      if (d.customVmOpsBars != null && d.customVmOpsBars >= BAR_MASK_LIMIT) {
        throw new FieldError(where(path, 'deviceInfo.customVmOpsBars'), `BAR bitmask ${d.customVmOpsBars} has bits above BAR ${MAX_BAR}`);
      }
      break;
    }
    default: break;
  }
}

/** Throws FieldError (with the field path) at the first problem. */
export function validateBatch(batch: EventBatch): void {
  const host = batch.host;
  if (!host) throw new FieldError('host', 'missing (hostname and bootId identify the event stream)');
  if (!host.hostname) throw new FieldError('host.hostname', 'missing or empty');
  if (!host.bootId) throw new FieldError('host.bootId', 'missing or empty');
  (host.capabilities ?? []).forEach((c, i) => knownEnum(v1.Capability, 'Capability', c, `host.capabilities[${i}]`, ''));
  nonNegativeInteger(batch.firstSeq, 'firstSeq', '');
  nonNegativeInteger(batch.dropped, 'dropped', '');
  nonNegativeInteger(batch.nowNs, 'nowNs', '');
  const events = batch.events ?? [];
  for (let i = 0; i < events.length; i++) checkEvent(events[i]!, i);
}
