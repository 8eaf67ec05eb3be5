// What a lab run must look like once analyzed: every ledger operation becomes the episode it caused (trigger,
// timed zaps, DMABUF revokes and importer notifications from the real kernel), the double memory-off shows two
// DEVICE zaps with no fault between, no SKIPPED_ZAP, 0 < revoke_ns <= release − revoke start. Shared by the live
// lab test and the fixture test.
import { FindingKind, Severity, TriggerKind, ZapTarget, bodyOf, zapsBeforeLock, type Episode, type Event, type EventBatch, type Finding } from '../../services/core/model.js';
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

/** The lab importer's identity as the collector reports it (module:symbol of attach->importer_ops). */
export const LAB_IMPORTER = 'rs_importer:rs_importer_ops';
const ENOTTY = -25, ENOTSUP = -95;

type Want = { trigger?: TriggerKind | TriggerKind[]; zaps?: number; revoke: boolean; count: 'one' | 'some' } | 'none' | 'lock-only' | 'lock-only-or-none' | 'any';

/** Episodes each operation must produce; ops not listed produce none. */
function expected(op: LedgerOp): Want {
  const name = op.op.replace(/:.*$/, '');
  switch (name) {
    case 'cmd-off': return { trigger: TriggerKind.MEM_DISABLE, zaps: 1, revoke: true, count: 'one' };
    case 'cmd-on': return { trigger: TriggerKind.MEM_ENABLE, zaps: 0, revoke: false, count: 'one' };
    // VFIO_DEVICE_RESET revokes, then pci_try_reset_function() may fail (-ENOTTY: no reset method left): the
    // episode is there either way; -ENOTSUP is the workload's own "device cannot reset" (no ioctl made)
    case 'reset': return op.result === ENOTSUP ? 'none' : { trigger: TriggerKind.RESET, zaps: 1, revoke: true, count: 'one' };
    case 'hot-reset': return { trigger: TriggerKind.HOT_RESET, zaps: 1, revoke: true, count: 'one' };
    case 'flr': return op.result === ENOTSUP ? 'none' : { trigger: TriggerKind.FLR, zaps: 1, revoke: true, count: 'one' };
    case 'd3': return op.result === ENOTSUP ? 'none' : { trigger: TriggerKind.D3HOT, zaps: 1, revoke: true, count: 'one' };
    case 'd0': return op.result === ENOTSUP ? 'none' : { trigger: TriggerKind.D0, zaps: 0, revoke: false, count: 'one' };
    // close may also run runtime-PM paths after the CLOSE episode; on 6.12 the close's write section is
    // vfio_pci_core_disable() → vfio_pci_runtime_pm_exit(), announced after CLOSE by the same task: the newer
    // trigger names it (rules v2: CLOSE becomes a stale trigger)
    case 'close': return { trigger: [TriggerKind.CLOSE, TriggerKind.RUNTIME_PM_EXIT], zaps: 0, revoke: false, count: 'some' };
    case 'loop-reset': return { trigger: TriggerKind.RESET, zaps: 1, revoke: true, count: 'some' };
    // vfio_pci_core_feature_dma_buf() takes memory_lock to add the DMABUF to vdev->dmabufs
    case 'dmabuf': return op.result < 0 ? 'none' : 'lock-only';
    // dma_buf release takes memory_lock to unlink a DMABUF still tied to an open device
    case 'importer-close': case 'dmabuf-close': return 'lock-only-or-none';
    case 'wait': case 'sleep': return 'any';               // other processes' operations run meanwhile
    default: return 'none';                                 // map, touch, unmap, import, notified, hot-reset-bad, ...
  }
}

export interface LabVerdict {
  problems: string[];
  episodes: Episode[]; findings: Finding[]; events: Event[]; perOp: { op: LedgerOp; episodes: Episode[] }[];
}

/** A trigger of `kind` by `tid` whose TriggerEnd (ret < 0) came before that task took any lock: voided (rules v2). */
function voidedTrigger(events: Event[], tid: number, kind: TriggerKind, before: number): boolean {
  const mine = events.filter((e) => e.tid === tid && Number(e.tsNs) < before).sort((a, b) => Number(a.tsNs) - Number(b.tsNs));
  for (const [i, e] of mine.entries()) {
    if (e.trigger?.kind !== kind) continue;
    for (const x of mine.slice(i + 1)) {
      if (x.lockAcquire) break;
      if (x.triggerEnd?.kind === kind && (x.triggerEnd.ret ?? 0) < 0) return true;
    }
  }
  return false;
}

const trig = (k: number) => TriggerKind[k] ?? String(k);
const within = (e: Event, op: LedgerOp) => Number(e.tsNs) >= op.begin && Number(e.tsNs) <= op.end;

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
  const dmabufLive = new Map<string, boolean>();           // a DMABUF of the device is exported (until close)
  // operations that ended before the collector's first event (it started meanwhile) are not in the trace
  const traceStart = Math.min(...events.map((e) => Number(e.tsNs)));
  for (const [i, { op, episodes: eps }] of perOp.entries()) {
    if (op.op === 'dmabuf' && op.result >= 0) dmabufLive.set(op.device, true);
    if (op.end < traceStart) continue;
    let want = expected(op);
    const prev = ledger[i - 1];
    const where = `${op.device} ${op.op}@${op.begin}`;
    if (perVma && typeof want === 'object' && op.op === 'cmd-off' && prev?.op === 'cmd-off' && prev.device === op.device) want = { ...want, zaps: 0 };
    if (want === 'any') continue;
    if (want === 'none') {
      if (eps.length) problems.push(`${where}: expected no episode, got ${eps.map((e) => trig(e.trigger)).join(',')}`);
      continue;
    }
    if (want === 'lock-only-or-none' || want === 'lock-only') {
      if (want === 'lock-only' && eps.length !== 1) problems.push(`${where}: expected 1 lock-only episode, got ${eps.length}`);
      for (const e of eps) if (e.revoke || e.zapCount) problems.push(`${where}: expected a lock-only episode, got a revoke (${trig(e.trigger)})`);
      continue;
    }
    const w = want;
    if (w.count === 'one' ? eps.length !== 1 : eps.length < 1) { problems.push(`${where}: expected ${w.count === 'one' ? '1 episode' : 'episodes'}, got ${eps.length}`); continue; }
    // loop-reset: the collector started during the loop; the window it started in is not an episode of ours
    const checked = op.op.startsWith('loop-reset') ? eps.filter((e) => e.complete) : [eps[0]!];
    if (op.op.startsWith('loop-reset') && checked.length < 3) problems.push(`${where}: ${checked.length} complete RESET episodes, want >= 3`);
    for (const e of checked) {
      const wanted = w.trigger === undefined ? undefined : ([] as TriggerKind[]).concat(w.trigger);
      if (wanted !== undefined && !wanted.includes(e.trigger)) {
        const msg = `${where}: trigger ${trig(e.trigger)}, want ${wanted.map(trig).join(' or ')}`;
        problems.push(voidedTrigger(events, op.tid, e.trigger, e.acquireTsNs)
          ? `${msg} (the correlator attached a trigger its own TriggerEnd voided: the ioctl failed before locking)` : msg);
      }
      if (w.zaps !== undefined && e.zapCount !== w.zaps) problems.push(`${where}: zap_count ${e.zapCount}, want ${w.zaps}`);
      if (!e.complete) problems.push(`${where}: episode incomplete`);
      if (e.holdNs <= 0) problems.push(`${where}: hold_ns ${e.holdNs}`);
      if (w.revoke && !e.revoke) problems.push(`${where}: not a revoke episode`);
      if (w.zaps) {
        if (!(e.zapNs > 0)) problems.push(`${where}: zap not timed (zap_ns ${e.zapNs})`);
        // revoke_ns runs from the first revoking step, which precedes the lock where the kernel zaps before
        // down_write (6.1: vfio_pci_zap_and_down_write_memory_lock), so its bound is release − that start
        const firstZap = Math.min(...events.filter((x) => x.device === op.device && bodyOf(x) === 'zap' &&
          Number(x.tsNs) >= Math.min(op.begin, e.acquireTsNs) && Number(x.tsNs) <= e.releaseTsNs).map((x) => Number(x.tsNs)));
        const span = e.releaseTsNs - Math.min(e.acquireTsNs, firstZap);
        if (!(e.revokeNs > 0 && e.revokeNs <= span)) problems.push(`${where}: revoke_ns ${e.revokeNs} not in (0, release − revoke start ${span}]`);
      }
      // with a DMABUF exported, every revoke also revokes it: vfio_pci_dma_buf_move(vdev, true) from the real kernel
      if (w.revoke && dmabufLive.get(op.device)) {
        const revokes = events.filter((x) => x.device === op.device && x.dmabufRevoke?.revoked && Number(x.tsNs) >= e.acquireTsNs && Number(x.tsNs) <= e.releaseTsNs);
        if (!revokes.length) problems.push(`${where}: no DmaBufRevoke{revoked} in the episode although a DMABUF is exported`);
      }
    }
    if (op.op === 'close') dmabufLive.delete(op.device);
  }
  // A failed ioctl says so: TriggerEnd with the ioctl's return value (voids the trigger of one that never locked).
  for (const op of ledger) {
    if (op.result >= 0 || !/^(reset|hot-reset-bad)$/.test(op.op) || op.result === ENOTSUP) continue;
    const ends = events.filter((e) => e.device === op.device && e.triggerEnd && within(e, op));
    if (!ends.some((e) => e.triggerEnd!.ret === op.result)) problems.push(`${op.device} ${op.op}@${op.begin}: no TriggerEnd with ret ${op.result} (got ${ends.map((e) => e.triggerEnd!.ret).join(',') || 'none'})`);
  }
  // A hot reset names every device of the set with one group id, and each of them has its HOT_RESET episode.
  for (const op of ledger.filter((o) => o.op === 'hot-reset' && o.result === 0)) {
    const trigs = events.filter((e) => e.trigger?.kind === TriggerKind.HOT_RESET && within(e, op));
    const groups = new Set(trigs.map((e) => Number(e.trigger!.groupId ?? 0)));
    const devs = new Set(trigs.map((e) => e.device));
    if (devs.size < 2) problems.push(`hot reset of ${op.device}: triggers name ${devs.size} device(s), want every device of the set (>= 2)`);
    if (groups.size !== 1 || groups.has(0)) problems.push(`hot reset of ${op.device}: group ids ${[...groups].join(',')}, want one non-zero id`);
    for (const d of devs) {
      const eps = episodes.filter((e) => e.device === d && e.acquireTsNs >= op.begin && e.acquireTsNs <= op.end && e.revoke);
      if (eps.length !== 1 || eps[0]!.zapCount !== 1) problems.push(`hot reset of ${op.device}: ${d} has ${eps.length} revoke episodes (zaps ${eps.map((e) => e.zapCount).join(',')}), want 1 with 1 zap`);
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
  return { problems, episodes, findings, events, perOp };
}

/** DMABUF checks for a run with the lab importer attached (7.x): the real kernel's revokes notify the importer,
 * which the collector names, and every device with a slow importer gets SLOW_REVOKE for its revokes. */
export function checkImporters(v: LabVerdict, ledger: LedgerOp[], slowLimitNs = 50e6): string[] {
  const problems: string[] = [];
  for (const op of ledger.filter((o) => /^import(:|$)/.test(o.op))) {
    if (op.result < 1) { problems.push(`${op.device} ${op.op}: the importer did not attach (${op.result})`); continue; }
    const close = ledger.find((o) => o.device === op.device && o.op === 'close' && o.begin > op.end);
    const notes = v.events.filter((e) => e.device === op.device && e.moveNotify && Number(e.tsNs) > op.end && Number(e.tsNs) <= (close?.end ?? Infinity));
    if (!notes.length) { problems.push(`${op.device}: no MoveNotify after the importer attached`); continue; }
    for (const n of notes) {
      if (n.moveNotify!.importerCount !== 1 || JSON.stringify(n.moveNotify!.importers) !== JSON.stringify([LAB_IMPORTER]))
        problems.push(`${op.device}: MoveNotify at ${n.tsNs} names ${n.moveNotify!.importerCount} importer(s) ${JSON.stringify(n.moveNotify!.importers)}, want [${LAB_IMPORTER}]`);
    }
    const delayUs = Number(/^import:(\d+)$/.exec(op.op)?.[1] ?? 0);
    if (delayUs * 1000 > slowLimitNs) {
      // the importer sleeps delayUs (msleep: jiffies, which a TCG guest's clock does not follow exactly): every
      // notification through it must at least exceed the SLOW_REVOKE limit
      const slow = notes.filter((n) => Number(n.moveNotify!.durationNs) > slowLimitNs);
      if (slow.length !== notes.length) problems.push(`${op.device}: ${notes.length - slow.length} of ${notes.length} MoveNotify through the ${delayUs} µs importer within the ${slowLimitNs / 1e6} ms limit`);
      const revokeEps = v.episodes.filter((e) => e.device === op.device && e.revoke && e.acquireTsNs > op.end && e.moveNs > 0 && e.acquireTsNs <= (close?.end ?? Infinity));
      const slowFindings = v.findings.filter((f) => f.device === op.device && f.kind === FindingKind.SLOW_REVOKE);
      if (!revokeEps.length) problems.push(`${op.device}: no revoke episode notified the slow importer`);
      if (slowFindings.length < revokeEps.length) problems.push(`${op.device}: ${slowFindings.length} SLOW_REVOKE for ${revokeEps.length} revokes through a ${delayUs} µs importer`);
      // the finding should name who was slow: the trace's MoveNotify.importers does (the correlator's evidence is the lead's)
      const unnamed = slowFindings.filter((f) => !String(f.evidence).includes(LAB_IMPORTER.split(':')[0]!));
      if (unnamed.length) v.problems.push(`${op.device}: ${unnamed.length} SLOW_REVOKE whose evidence does not name the importer (${LAB_IMPORTER} is in the episode's MoveNotify.importers)`);
    }
  }
  return problems;
}

/** Certain findings on a correct kernel: none, except the deliberate SLOW_REVOKE of `slowDevices` and the
 * REDUNDANT_ZAP of a memory-off write that follows another with memory still off (the field scenario writes it on
 * purpose: vfio_basic_config_write() zaps on every memory-off write, and the second zap is wasted work, which the
 * rule reports). (Before rules v2 the lab listed two correlator disagreements here, an UNPAIRED_REVOKE on a
 * never-opened hot-reset sibling and an UNREVOKE_WITHOUT_REVOKE for a no-op unrevoke; both are fixed, and any other
 * certain finding fails.) */
export function unexpectedFindings(v: LabVerdict, slowDevices: Set<string>, ledger: LedgerOp[] = []): Finding[] {
  const repeatedOff = repeatedMemoryOff(ledger);
  return v.findings.filter((f) => !f.inconclusive
    && !(f.kind === FindingKind.SLOW_REVOKE && slowDevices.has(f.device) && f.severity === Severity.WARNING)
    && !(f.kind === FindingKind.REDUNDANT_ZAP && ruleOf(f) === 'redundant_zap.memory_still_off'
      && repeatedOff.some((op) => op.device === f.device && Number(f.tsNs) >= op.begin && Number(f.tsNs) <= op.end)));
}

const ruleOf = (f: Finding): string => { try { return String((JSON.parse(f.evidence) as { rule?: unknown }).rule ?? ''); } catch { return ''; } };

/** cmd-off operations whose device's previous COMMAND write was a memory-off too, with no fault served between. */
function repeatedMemoryOff(ledger: LedgerOp[]): LedgerOp[] {
  const out: LedgerOp[] = [];
  const off = new Map<string, boolean>();
  for (const op of ledger) {
    const key = `${op.device}/${op.tid}`;
    if (op.op === 'cmd-off') { if (off.get(key)) out.push(op); off.set(key, true); }
    else if (op.op === 'cmd-on' || op.op === 'close' || op.op.startsWith('reset') || (op.op === 'touch' && op.result === 0)) off.set(key, false);
  }
  return out;
}

/** The 6.12 field conditions (guest.sh scenario "field"): the collector started while nvme's resets held memory_lock
 * back to back and while edu's memory was off; a reset failed inside the lock, a hot reset before it. */
export function checkField(v: LabVerdict, ledger: LedgerOp[], backend: 'ftrace' | 'bpftrace' = 'ftrace'): string[] {
  const problems: string[] = [];
  const loop = ledger.find((o) => o.op.startsWith('loop-reset:'));
  const off = ledger.find((o) => o.op.startsWith('wait:'));
  if (!loop || !off) return ['the ledger has no field-condition operations (loop-reset, wait)'];
  const byTs = (dev: string) => v.events.filter((e) => e.device === dev).sort((a, b) => Number(a.tsNs) - Number(b.tsNs));
  // started inside a window: with ftrace (every probe goes live at once) nvme's first lock event is a release (its
  // acquire happened before); bpftrace's probes go live one by one, so its decoder drops lock-window events until a
  // device's first acquire (Decoder untilFirstAcquire): there the first is an acquire
  const nv = byTs(loop.device).filter((e) => e.lockAcquire || e.lockRelease);
  const first = nv[0] ? Object.keys(nv[0]).find((k) => k.startsWith('lock')) : 'none';
  if (first !== (backend === 'ftrace' ? 'lockRelease' : 'lockAcquire')) problems.push(`${loop.device}: ${backend} trace: first lock event ${first}`);
  const firstInfo = byTs(loop.device).find((e) => e.deviceInfo);
  if (!firstInfo || firstInfo.deviceInfo!.openCount !== 1) problems.push(`${loop.device}: start snapshot open_count ${firstInfo?.deviceInfo?.openCount}, want 1`);
  // the window the collector started in is not an episode and makes no certain finding
  const early = v.findings.filter((f) => f.device === loop.device && !f.inconclusive && Number(f.tsNs) < (nv.find((e) => e.lockAcquire)?.tsNs ?? Infinity));
  if (early.length) problems.push(`${loop.device}: certain findings about the window the collector started in: ${early.map((f) => FindingKind[f.kind]).join(',')}`);
  // started while memory was off: the snapshot says so, and the next touch faults without installing PTEs
  const ed = byTs(off.device);
  const info = ed.find((e) => e.deviceInfo);
  if (info?.deviceInfo?.memoryEnabled !== false) problems.push(`${off.device}: start snapshot memory_enabled ${info?.deviceInfo?.memoryEnabled}, want false`);
  const touch = ledger.find((o) => o.device === off.device && o.op === 'touch' && o.begin > off.end);
  const faults = ed.filter((e) => e.barFault && touch && Number(e.tsNs) >= touch.begin && Number(e.tsNs) <= touch.end);
  if (touch?.result !== 1 || !faults.length || faults.some((e) => e.barFault!.ok)) problems.push(`${off.device}: the touch after start should SIGBUS with a failed BarFault (result ${touch?.result}, faults ${faults.map((e) => e.barFault!.ok).join(',')})`);
  // a reset that fails inside the lock: the episode revokes, the reset function and the ioctl return -ENOTTY
  const failed = ledger.find((o) => o.device === off.device && o.op === 'reset' && o.result === ENOTTY);
  if (!failed) problems.push(`${off.device}: no reset failed with -ENOTTY (no-reset-method did not take effect?)`);
  else {
    const rf = ed.filter((e) => e.resetFunction && within(e, failed));
    if (!rf.some((e) => e.resetFunction!.ret === ENOTTY)) problems.push(`${off.device}: no ResetFunction with ret ${ENOTTY} in the failed reset`);
  }
  // a hot reset that fails before the lock: TriggerEnd(-EINVAL), no episode (checked by checkLab)
  if (!ledger.some((o) => o.device === off.device && o.op === 'hot-reset-bad' && o.result < 0)) problems.push(`${off.device}: hot-reset-bad did not fail`);
  return problems;
}
