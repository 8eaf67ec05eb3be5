// What the lab workload must look like once analyzed: one episode per operation with the right trigger,
// timed zaps, the double memory-off as two consecutive DEVICE zaps with no fault between, no SKIPPED_ZAP,
// 0 < revoke_ns <= hold_ns. Shared by the live lab test and the fixture test.
import { FindingKind, TriggerKind, ZapTarget, bodyOf, zapsBeforeLock, type Episode, type Event, type EventBatch, type Finding } from '../../services/core/model.js';
import { analyzeBatches } from '../../services/core/analysis.js';

export interface LedgerOp { device: string; op: string; begin: number; end: number; tid: number; result: number }

export function parseLedger(text: string): LedgerOp[] {
  const ops: LedgerOp[] = [];
  let device = '';
  for (const line of text.split('\n')) {
    const d = /^DEVICE (\S+)/.exec(line);
    if (d) { device = d[1]!; continue; }
    const m = /^OP (\S+) (\d+) (\d+) (\d+) (-?\d+)/.exec(line);
    if (m) ops.push({ device, op: m[1]!, begin: Number(m[2]), end: Number(m[3]), tid: Number(m[4]), result: Number(m[5]) });
  }
  return ops;
}

/** Episodes each operation must produce (trigger, zap count); others produce none. */
const EXPECTED: Record<string, { trigger: TriggerKind; zaps: number } | null> = {
  map: null, touch: null,
  'cmd-off': { trigger: TriggerKind.MEM_DISABLE, zaps: 1 },
  'cmd-on': { trigger: TriggerKind.MEM_ENABLE, zaps: 0 },
  reset: { trigger: TriggerKind.RESET, zaps: 1 },
  d3: { trigger: TriggerKind.D3HOT, zaps: 1 },
  d0: { trigger: TriggerKind.D0, zaps: 0 },
  close: { trigger: TriggerKind.CLOSE, zaps: 0 },
};

export interface LabVerdict { problems: string[]; episodes: Episode[]; findings: Finding[]; perOp: { op: LedgerOp; episodes: Episode[] }[] }

const trig = (k: number) => TriggerKind[k] ?? String(k);

/** zapsBeforeLock: pre-6.11 kernels zap per VMA before down_write; the zap still belongs to the episode. */
export function checkLab(batches: EventBatch[], ledger: LedgerOp[]): LabVerdict {
  const { episodes, findings } = analyzeBatches(batches);
  // Before 6.11 vfio_pci_zap_and_vma_lock() zaps only the VMAs on vdev->vma_list and empties it; only a
  // fault (vfio_pci_mmap_fault) puts a VMA back. A memory-off right after a memory-off zaps nothing.
  const perVma = zapsBeforeLock(batches[0]?.host?.kernelRelease ?? '');
  const events: Event[] = batches.flatMap((b) => b.events ?? []);
  const problems: string[] = [];
  const perOp = ledger.map((op) => ({
    op, episodes: episodes.filter((e) => e.device === op.device && e.acquireTsNs >= op.begin && e.acquireTsNs <= op.end)
      .sort((a, b) => a.acquireTsNs - b.acquireTsNs),
  }));
  for (const [i, { op, episodes: eps }] of perOp.entries()) {
    let want = EXPECTED[op.op];
    const prev = ledger[i - 1];
    if (perVma && want && op.op === 'cmd-off' && prev?.op === 'cmd-off' && prev.device === op.device) want = { ...want, zaps: 0 };
    const where = `${op.device} ${op.op}@${op.begin}`;
    if (op.result < 0) continue;                                   // not supported by this device (-ENOTSUP)
    if (want === null || want === undefined) {
      if (eps.length) problems.push(`${where}: expected no episode, got ${eps.map((e) => trig(e.trigger)).join(',')}`);
      continue;
    }
    // close may also run runtime-PM paths after the CLOSE episode; every other op is exactly one episode.
    if (op.op === 'close' ? eps.length < 1 : eps.length !== 1) { problems.push(`${where}: expected 1 episode, got ${eps.length}`); continue; }
    const e = eps[0]!;
    if (e.trigger !== want.trigger) problems.push(`${where}: trigger ${trig(e.trigger)}, want ${trig(want.trigger)}`);
    if (e.zapCount !== want.zaps) problems.push(`${where}: zap_count ${e.zapCount}, want ${want.zaps}`);
    if (!e.complete) problems.push(`${where}: episode incomplete`);
    if (e.holdNs <= 0) problems.push(`${where}: hold_ns ${e.holdNs}`);
    if (want.trigger === TriggerKind.MEM_DISABLE && !e.revoke) problems.push(`${where}: not a revoke episode`);
    if (want.zaps) {
      if (!e.revoke) problems.push(`${where}: not a revoke episode`);
      if (!(e.zapNs > 0)) problems.push(`${where}: zap not timed (zap_ns ${e.zapNs})`);
      // revoke_ns runs from the first revoking step, which precedes the lock where the kernel zaps before
      // down_write (6.1: vfio_pci_zap_and_down_write_memory_lock), so its bound is release − that start
      const firstZap = Math.min(...events.filter((x) => x.device === op.device && bodyOf(x) === 'zap' &&
        Number(x.tsNs) >= op.begin && Number(x.tsNs) <= op.end).map((x) => Number(x.tsNs)));
      const span = e.releaseTsNs - Math.min(e.acquireTsNs, firstZap);
      if (!(e.revokeNs > 0 && e.revokeNs <= span)) problems.push(`${where}: revoke_ns ${e.revokeNs} not in (0, release − revoke start ${span}]`);
    }
  }
  // The double memory-off: two consecutive cmd-off operations -> two DEVICE zaps, no fault in between.
  for (let i = 0; i + 1 < ledger.length; i++) {
    const a = ledger[i]!, b = ledger[i + 1]!;
    if (a.op !== 'cmd-off' || b.op !== 'cmd-off' || a.device !== b.device) continue;
    const zaps = events.filter((e) => e.device === a.device && bodyOf(e) === 'zap' && (e.zap!.target ?? ZapTarget.DEVICE) === ZapTarget.DEVICE &&
      Number(e.tsNs) >= a.begin && Number(e.tsNs) <= b.end);
    if (perVma) {
      if (zaps.length !== 1) problems.push(`double memory-off on ${a.device} (per-VMA era): ${zaps.length} zaps, want 1`);
      continue;
    }
    if (zaps.length !== 2) { problems.push(`double memory-off on ${a.device}: ${zaps.length} DEVICE zaps, want 2`); continue; }
    const [z1, z2] = zaps.map((z) => Number(z.tsNs)).sort((x, y) => x - y) as [number, number];
    const faults = events.filter((e) => e.device === a.device && bodyOf(e) === 'barFault' && Number(e.tsNs) > z1 && Number(e.tsNs) < z2);
    if (faults.length) problems.push(`double memory-off on ${a.device}: ${faults.length} faults between the zaps`);
  }
  for (const f of findings) if (f.kind === FindingKind.SKIPPED_ZAP) problems.push(`SKIPPED_ZAP on ${f.device}: ${f.evidence}`);
  return { problems, episodes, findings, perOp };
}
