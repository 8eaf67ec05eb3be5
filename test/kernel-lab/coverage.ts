// Which event-model field of docs/rules.md (and of issue 14's vocabulary) each collector backend emits on a real
// kernel: the claim (EMITTED) and how a trace shows a field (emittedFields). test/collector-coverage.test.ts holds
// the claim against the kernel lab's traces.
import { TriggerKind, type EventBatch } from '../../services/core/model.js';

export type Backend = 'ftrace' | 'bpftrace';

/** Field -> the backends that emit it, and on which lab kernels (every backend emits it on each kernel listed). */
export const EMITTED: Record<string, { backends: Backend[]; kernels: string[]; note?: string }> = {
  'EventBatch.now_ns': { backends: ['ftrace', 'bpftrace'], kernels: ['6.12', '7.3'] },
  'DeviceInfo.memory_enabled': { backends: ['ftrace', 'bpftrace'], kernels: ['6.12', '7.3'] },
  'DeviceInfo.power_state': { backends: ['ftrace', 'bpftrace'], kernels: ['6.12', '7.3'] },
  'DeviceInfo.revoked': { backends: ['ftrace', 'bpftrace'], kernels: ['7.3'], note: 'only with a DMABUF exported (6.19+)' },
  'DeviceInfo.open_count': { backends: ['ftrace', 'bpftrace'], kernels: ['6.12', '7.3'] },
  'DeviceInfo.no_command_memory': { backends: ['ftrace', 'bpftrace'], kernels: ['6.12', '7.3'] },
  'DeviceInfo.custom_vm_ops_bars': { backends: ['ftrace', 'bpftrace'], kernels: ['6.12', '7.3'], note: '0 where the device\'s mmap is vfio_pci_core_mmap' },
  'DeviceInfo.zap_bars_on_revoke': { backends: [], kernels: [], note: 'no Debian kernel carries the series\' field: absent, never guessed' },
  'TriggerEnd': { backends: ['ftrace', 'bpftrace'], kernels: ['6.12', '7.3'] },
  'TriggerEnd.ret<0': { backends: ['ftrace', 'bpftrace'], kernels: ['6.12', '7.3'] },
  'TriggerKind.OPEN': { backends: ['ftrace', 'bpftrace'], kernels: ['6.12', '7.3'] },
  'TriggerKind.FLR': { backends: ['ftrace', 'bpftrace'], kernels: ['7.3'], note: 'the field scenario makes no FLR config write' },
  'Trigger.group_id (hot reset, every device of the set)': { backends: ['ftrace', 'bpftrace'], kernels: ['7.3'], note: 'the two-function edu runs in the dmabuf scenario' },
  'PowerTransition': { backends: ['ftrace', 'bpftrace'], kernels: ['6.12', '7.3'] },
  'ResetFunction': { backends: ['ftrace', 'bpftrace'], kernels: ['6.12', '7.3'] },
  'BarMunmap (munmap, not close)': { backends: ['ftrace', 'bpftrace'], kernels: ['6.12', '7.3'] },
  'MoveNotify.importer_count': { backends: ['ftrace', 'bpftrace'], kernels: ['7.3'] },
  'MoveNotify.importers': { backends: ['ftrace', 'bpftrace'], kernels: ['7.3'] },
};

/** The fields a trace shows (a field counts when some event carries it with a value read from the kernel). */
export function emittedFields(batches: EventBatch[]): Set<string> {
  const out = new Set<string>();
  const events = batches.flatMap((b) => b.events ?? []);
  if (batches.length && batches.every((b) => Number(b.nowNs) > 0)) out.add('EventBatch.now_ns');
  const info = events.filter((e) => e.deviceInfo).map((e) => e.deviceInfo!);
  const has = (k: keyof NonNullable<(typeof info)[number]>) => info.some((d) => d[k] !== undefined && d[k] !== null);
  if (has('memoryEnabled')) out.add('DeviceInfo.memory_enabled');
  if (has('powerState')) out.add('DeviceInfo.power_state');
  if (has('revoked')) out.add('DeviceInfo.revoked');
  if (has('openCount')) out.add('DeviceInfo.open_count');
  if (has('noCommandMemory')) out.add('DeviceInfo.no_command_memory');
  if (has('customVmOpsBars')) out.add('DeviceInfo.custom_vm_ops_bars');
  if (has('zapBarsOnRevoke')) out.add('DeviceInfo.zap_bars_on_revoke');
  if (events.some((e) => e.triggerEnd)) out.add('TriggerEnd');
  if (events.some((e) => (e.triggerEnd?.ret ?? 0) < 0)) out.add('TriggerEnd.ret<0');
  if (events.some((e) => e.trigger?.kind === TriggerKind.OPEN)) out.add('TriggerKind.OPEN');
  if (events.some((e) => e.trigger?.kind === TriggerKind.FLR)) out.add('TriggerKind.FLR');
  const groups = new Map<number, Set<string>>();
  for (const e of events) if (e.trigger?.kind === TriggerKind.HOT_RESET && Number(e.trigger.groupId)) {
    let s = groups.get(Number(e.trigger.groupId)); if (!s) groups.set(Number(e.trigger.groupId), (s = new Set())); s.add(e.device!);
  }
  if ([...groups.values()].some((s) => s.size >= 2)) out.add('Trigger.group_id (hot reset, every device of the set)');
  if (events.some((e) => e.powerTransition)) out.add('PowerTransition');
  if (events.some((e) => e.resetFunction)) out.add('ResetFunction');
  // a BarMunmap before the device's CLOSE trigger (the decoder also retires mappings at close)
  if (events.some((e) => e.barMunmap && !events.some((c) => c.device === e.device && c.trigger?.kind === TriggerKind.CLOSE && c.tsNs === e.tsNs)))
    out.add('BarMunmap (munmap, not close)');
  if (events.some((e) => (e.moveNotify?.importerCount ?? 0) > 0)) out.add('MoveNotify.importer_count');
  if (events.some((e) => (e.moveNotify?.importers ?? []).some((i) => /^\w+:\w+$/.test(i)))) out.add('MoveNotify.importers');
  return out;
}

