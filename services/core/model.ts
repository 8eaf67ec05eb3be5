// The event model (docs/design.md §3): types generated from proto/ plus small domain helpers. Pure, no I/O.
import { EventFields as EV } from '../../gen/fields.js';
import { revokescope } from '../../gen/proto.js';

export const v1 = revokescope.v1;
export const Capability = v1.Capability;
export const ZapTarget = v1.Zap.ZapTarget;
export const Backing = v1.BarMmap.Backing;
export const TriggerKind = v1.TriggerKind;
export const FindingKind = v1.FindingKind;
export const Severity = v1.Severity;
export type Capability = revokescope.v1.Capability;
export type ZapTarget = revokescope.v1.Zap.ZapTarget;
export type Backing = revokescope.v1.BarMmap.Backing;
export type TriggerKind = revokescope.v1.TriggerKind;
export type FindingKind = revokescope.v1.FindingKind;
export type Severity = revokescope.v1.Severity;

/** An event as plain data: decoded protobuf messages (which also know their oneof `body`) and hand-built
 * objects both fit. */
export type Event = revokescope.v1.IEvent & { body?: revokescope.v1.Event['body'] };
export type HostInfo = revokescope.v1.IHostInfo;
export type Cgroup = revokescope.v1.ICgroup;
export type KernelStack = revokescope.v1.IKernelStack;
export type EventBatch = Omit<revokescope.v1.IEventBatch, 'events'> & { events?: Event[] | null };
export type DeviceInfo = revokescope.v1.IDeviceInfo;
export type Zap = revokescope.v1.IZap;
export type DmaBufRevoke = revokescope.v1.IDmaBufRevoke;
export type MoveNotify = revokescope.v1.IMoveNotify;
export type BarMmap = revokescope.v1.IBarMmap;
export type BarMunmap = revokescope.v1.IBarMunmap;
export type BarFault = revokescope.v1.IBarFault;
export type Trigger = revokescope.v1.ITrigger;
export type TriggerEnd = revokescope.v1.ITriggerEnd;
export type PowerTransition = revokescope.v1.IPowerTransition;
export type ResetFunction = revokescope.v1.IResetFunction;

/** Correlator outputs, fully populated (every field present; 64-bit values as JS numbers). */
export type Episode = { [K in keyof revokescope.v1.IEpisode]-?: NonNullable<revokescope.v1.IEpisode[K]> };
export type Finding = { [K in keyof revokescope.v1.IFinding]-?: NonNullable<revokescope.v1.IFinding[K]> };

export type BodyKind = NonNullable<Event['body']>;

/** Body member names by their field number in Event (fields from deviceInfo on are the oneof's members). */
export const BODY_BY_FIELD: (BodyKind | undefined)[] = [];
for (const [name, no] of Object.entries(EV)) if (no >= EV.deviceInfo) BODY_BY_FIELD[no] = name as BodyKind;
export const bodyOfField = (field: number): BodyKind | undefined => BODY_BY_FIELD[field];

/** Which oneof member an event carries, as its field number in Event (0: none). Reads the fields directly (most
 * frequent first) rather than protobufjs' virtual `body` getter, which walks every member on each call; unset members
 * are null. */
export function bodyFieldOf(ev: Event): number {
  if (ev.barFault) return EV.barFault;
  if (ev.lockAcquire) return EV.lockAcquire;
  if (ev.lockRelease) return EV.lockRelease;
  if (ev.moveNotify) return EV.moveNotify;
  if (ev.trigger) return EV.trigger;
  if (ev.dmabufRevoke) return EV.dmabufRevoke;
  if (ev.zap) return EV.zap;
  if (ev.barMmap) return EV.barMmap;
  if (ev.barMunmap) return EV.barMunmap;
  if (ev.deviceInfo) return EV.deviceInfo;
  if (ev.triggerEnd) return EV.triggerEnd;
  if (ev.powerTransition) return EV.powerTransition;
  if (ev.resetFunction) return EV.resetFunction;
  return 0;
}

/** Which oneof member an event carries (bodyFieldOf's member, by name). */
export const bodyOf = (ev: Event): BodyKind | undefined => BODY_BY_FIELD[bodyFieldOf(ev)];

/** VFIO_PCI_OFFSET_SHIFT: region index lives in bits 40+ of the device fd offset (vfio_pci_priv.h). */
export const VFIO_PCI_OFFSET_SHIFT = 40;
export const BAR_REGION_BYTES = 2 ** VFIO_PCI_OFFSET_SHIFT;
/** BAR0..BAR5: what vfio_pci_zap_bars() passes to unmap_mapping_range (0, 6 << 40). */
export const ALL_BARS_LENGTH = 6 * BAR_REGION_BYTES;

/** Triggers whose kernel path revokes BAR access (docs/rules.md §3): VFIO_DEVICE_RESET, VFIO_DEVICE_PCI_HOT_RESET,
 * FLR / AF-FLR config writes, a PCI_COMMAND write clearing memory, PMCSR to D3hot and runtime PM entry (each calls
 * vfio_pci_zap_and_down_write_memory_lock() or vfio_pci_zap_bars()), and the series' permanent revoke. */
export function triggerRequiresRevoke(kind: TriggerKind): boolean {
  switch (kind) {
    case TriggerKind.RESET: case TriggerKind.HOT_RESET: case TriggerKind.FLR: case TriggerKind.MEM_DISABLE:
    case TriggerKind.D3HOT: case TriggerKind.RUNTIME_PM_ENTRY: case TriggerKind.PERMANENT_REVOKE:
      return true;
    default:
      return false;
  }
}

/** Kernel "era" by release string: the probe set and some rules differ (docs/design.md §7). */
export function kernelVersion(release: string): { major: number; minor: number } | undefined {
  const m = /^(\d+)\.(\d+)/.exec(release);
  return m ? { major: Number(m[1]), minor: Number(m[2]) } : undefined;
}

/** Before 6.11 vfio_pci_zap_and_down_write_memory_lock() zapped each VMA (zap_vma_ptes) under
 * vma_lock *before* taking memory_lock for write; from 6.11 unmap_mapping_range runs under it. */
export function zapsBeforeLock(release: string): boolean {
  const v = kernelVersion(release);
  return v !== undefined && (v.major < 6 || (v.major === 6 && v.minor < 11));
}

/** From 6.11 vfio_pci_zap_bars() runs unmap_mapping_range() on the vdev inode under the write lock. */
export function zapsUnderLock(release: string): boolean {
  const v = kernelVersion(release);
  return v !== undefined && (v.major > 6 || (v.major === 6 && v.minor >= 11));
}
