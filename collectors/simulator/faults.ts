// Injected scenarios: kernel or driver bugs, and the field conditions of issue 13 (late start, failed ioctls, other
// tasks' config writes, unopened hot-reset siblings, VFs, loss, older collectors, hung resets). Each runs on a
// dedicated device with a script. Its truth comes from the judge (judge.ts) as the events happen; what each
// scenario was written to produce is declared here, and test/simulator.test.ts checks that the two agree.
import { TriggerKind, VFIO_PCI_OFFSET_SHIFT, ZapTarget } from '../../services/core/model.js';
import type { EraName } from './eras.js';
import type { Device, EpisodeRecord, HostSim, PathOptions } from './host.js';
import type { Rng } from './rng.js';
import type { FaultName } from './truth.js';

const US = 1_000, MS = 1_000_000, S = 1_000_000_000;

export interface FaultSpec {
  fault: FaultName;
  eras: readonly EraName[];
  /** Hard host requirement beyond the era. */
  fits?: (h: HostSim) => boolean;
  /** Hosts tried first. */
  prefer?: (h: HostSim) => boolean;
  /** Script time before `at` (setup) and after it (until the device is quiet again). */
  lead: number;
  span: number;
  /** Ring-buffer loss marks the whole host: keep other scenarios well away (and, with untilEnd, out of the rest of the
   * run: what the correlator knew of every device is gone). */
  hostWide?: boolean;
  /** Runs at the collector's start (part of it before: the collector starts late). */
  atStart?: boolean;
  /** No other scenario may run on the host after this one (a hung device; loss). */
  untilEnd?: boolean;
  /** Build the device and its script; returns the device and the findings the scenario is written to produce
   * ('KIND/SEVERITY/certain|inconclusive'). */
  install: (h: HostSim, id: string, at: number, ctx: { rng: Rng; instance: number }) => { dev: Device; declared: string[] };
}

const ALL_ERAS: readonly EraName[] = ['pre-6.11', '6.12', '6.19', '7.1', 'series'];
const UNCONDITIONAL_ERAS: readonly EraName[] = ['6.12', '6.19', '7.1'];
const LOCKED_ZAP_ERAS: readonly EraName[] = ['6.12', '6.19', '7.1', 'series'];
const DMABUF_ERAS: readonly EraName[] = ['6.19', '7.1', 'series'];
const PRE_DMABUF_ERAS: readonly EraName[] = ['pre-6.11', '6.12'];

const current = (h: HostSim) => h.collector.kind === 'current';
const older = (h: HostSim) => h.collector.kind === 'older';

function certain(kind: string, severity: string): string { return `${kind}/${severity}/certain`; }
function inconclusive(kind: string, severity: string): string { return `${kind}/${severity}/inconclusive`; }

/** A VM reset under the lock (VFIO_DEVICE_RESET through a PM reset: a few ms). */
function reset(h: HostSim, dev: Device, t: number, extra: Partial<PathOptions> = {}): EpisodeRecord {
  const { actor = dev.proc.main, opNs = 6 * MS, ...rest } = extra;
  return h.path(dev, t, 'ioctl_reset', actor, opNs, rest);
}

function configWrite(h: HostSim, dev: Device, t: number, name: 'mem_disable' | 'mem_enable', extra: Partial<PathOptions> = {}): EpisodeRecord {
  const { actor = dev.proc.workers[0]!, opNs = 300 * US, ...rest } = extra;
  return h.path(dev, t, name, actor, opNs, rest);
}

export const FAULTS: Record<FaultName, FaultSpec> = {
  // The series zaps the vdev mapping only when zap_bars_on_revoke is set; a driver with its own vm_ops
  // (nvgrace-gpu device memory) that does not set it leaves populated PTEs through a reset.
  forgot_opt_in: {
    fault: 'forgot_opt_in', eras: ['series'], prefer: (h) => h.flavor === 'grace', lead: 300 * MS, span: 200 * MS,
    install(h, id, at) {
      const { dev, slot } = h.addScenarioDevice('nvgrace-gpu', id, 'forgot_opt_in', { profile: 0 });
      dev.zapBarsOnRevoke = false;
      const custom = [...dev.mappings.values()].find((m) => m.bar === 2)!;
      slot.steps.push({ at: at - 200 * MS, run: (t) => h.barFault(dev, dev.proc.workers[0]!, t, custom) });
      slot.steps.push({ at, run: (t) => reset(h, dev, t).releaseTs });
      return { dev, declared: [certain('SKIPPED_ZAP', 'CRITICAL')] };
    },
  },
  // Same driver bug, but the custom mapping was never faulted: nothing could be touched, still wrong.
  forgot_opt_in_unpopulated: {
    fault: 'forgot_opt_in_unpopulated', eras: ['series'], prefer: (h) => h.flavor === 'grace', lead: 300 * MS, span: 200 * MS,
    install(h, id, at) {
      const { dev, slot } = h.addScenarioDevice('nvgrace-gpu', id, 'forgot_opt_in_unpopulated', { profile: 0, mapAll: false });
      dev.zapBarsOnRevoke = false;
      h.addMapping(dev, dev.bars[0]!, true);
      slot.steps.push({ at: at - 150 * MS, run: (t) => h.mmap(dev, dev.proc.main, t, dev.bars[1]!).end });
      slot.steps.push({ at, run: (t) => reset(h, dev, t).releaseTs });
      return { dev, declared: [certain('SKIPPED_ZAP', 'WARNING')] };
    },
  },
  // The collector missed the custom mmap (made before it started, absent from the snapshot); the kernel
  // fact DmaBufRevoke.device_has_vmas=true still proves the skipped zap: certain, WARNING.
  forgot_opt_in_unseen: {
    fault: 'forgot_opt_in_unseen', eras: ['series'], fits: (h) => h.readsVmas, prefer: (h) => h.flavor === 'grace',
    lead: 0, span: 200 * MS,
    install(h, id, at) {
      const { dev, slot } = h.addScenarioDevice('nvgrace-gpu', id, 'forgot_opt_in_unseen', { profile: 0, mapAll: false });
      dev.zapBarsOnRevoke = false;
      dev.hiddenVmas = true;
      h.addMapping(dev, dev.bars[0]!, true);
      slot.steps.push({ at, run: (t) => reset(h, dev, t).releaseTs });
      return { dev, declared: [certain('SKIPPED_ZAP', 'WARNING')] };
    },
  },
  // hisi_acc's .mmap only wraps the core one (DMABUF-backed): a driver like it that keeps
  // zap_bars_on_revoke walks an empty vdev mapping under the write lock at every revoke.
  no_opt_out: {
    fault: 'no_opt_out', eras: ['series'], prefer: (h) => h.flavor === 'kunpeng', lead: 0, span: 600 * MS,
    install(h, id, at) {
      const { dev, slot } = h.addScenarioDevice('hisi_acc_vfio_pci', id, 'no_opt_out');
      dev.zapBarsOnRevoke = true;
      slot.steps.push({ at, run: (t) => reset(h, dev, t).releaseTs });
      slot.steps.push({ at: at + 400 * MS, run: (t) => h.path(dev, t, 'exp_flr', dev.proc.workers[0]!, 101 * MS).releaseTs });
      return { dev, declared: [certain('REDUNDANT_ZAP', 'INFO'), certain('REDUNDANT_ZAP', 'INFO')] };
    },
  },
  // The same range zapped twice in one episode: the second walk is wasted.
  double_zap: {
    fault: 'double_zap', eras: UNCONDITIONAL_ERAS, lead: 0, span: 200 * MS,
    install(h, id, at) {
      const { dev, slot } = h.addScenarioDevice('vfio-pci', id, 'double_zap');
      slot.steps.push({ at, run: (t) => reset(h, dev, t, { doubleZap: true }).releaseTs });
      return { dev, declared: [certain('REDUNDANT_ZAP', 'INFO')] };
    },
  },
  // A reset path that forgets vfio_pci_dma_buf_move(vdev, false) before up_write: importers stay cut off. A later
  // correct reset (the VM reboots) revokes (nothing left to change: dmabuf_count 0) and unrevokes.
  missing_unrevoke: {
    fault: 'missing_unrevoke', eras: DMABUF_ERAS, fits: current, lead: 0, span: 1_500 * MS,
    install(h, id, at) {
      const { dev, slot } = h.addScenarioDevice('vfio-pci', id, 'missing_unrevoke');
      h.addImporter(dev, 'mlx5_ib');
      slot.steps.push({ at, run: (t) => reset(h, dev, t, { omitUnrevoke: true }).releaseTs });
      slot.steps.push({ at: at + 1_200 * MS, run: (t) => reset(h, dev, t).releaseTs });
      return { dev, declared: [certain('UNPAIRED_REVOKE', 'WARNING')] };
    },
  },
  // A vfio_pci_dma_buf_move(vdev, false) that does not skip DMABUFs already unrevoked (on a PCI_COMMAND write that
  // leaves memory enabled): it tells importers about a change that never happened.
  unrevoke_without_revoke: {
    fault: 'unrevoke_without_revoke', eras: DMABUF_ERAS, fits: current, lead: 0, span: 100 * MS,
    install(h, id, at) {
      const { dev, slot } = h.addScenarioDevice('vfio-pci', id, 'unrevoke_without_revoke');
      h.addImporter(dev, 'iommufd');
      slot.steps.push({ at, run: (t) => configWrite(h, dev, t, 'mem_enable', { forceUnrevoke: true }).releaseTs });
      return { dev, declared: [certain('UNREVOKE_WITHOUT_REVOKE', 'WARNING')] };
    },
  },
  // unmap_mapping_range on the vdev mapping from a path that does not hold memory_lock (>= 6.11: a fault can race
  // the zap and re-install PTEs). A config write first, so that the lock is known to be free.
  zap_outside_lock: {
    fault: 'zap_outside_lock', eras: LOCKED_ZAP_ERAS, lead: 100 * MS, span: 50 * MS,
    install(h, id, at) {
      const { dev, slot } = h.addScenarioDevice('vfio-pci', id, 'zap_outside_lock');
      slot.steps.push({ at: at - 100 * MS, run: (t) => h.path(dev, t, 'lock_and_enable', dev.proc.workers[0]!, 200 * US).releaseTs });
      slot.steps.push({ at, run: (t) => { const ev = h.strayZap(dev, h.kworker, t); return t + ev.zap!.durationNs! + 1; } });
      return { dev, declared: [certain('LOCK_NOT_HELD', 'CRITICAL')] };
    },
  },
  // A GPU importer whose move_notify waits on fences for tens to hundreds of ms (dma_resv_wait_timeout).
  slow_importer: {
    fault: 'slow_importer', eras: DMABUF_ERAS, lead: 0, span: 600 * MS,
    install(h, id, at, { rng }) {
      const { dev, slot } = h.addScenarioDevice('vfio-pci', id, 'slow_importer', { importers: false });
      h.addImporter(dev, 'mlx5_ib');
      h.addImporter(dev, 'amdgpu');
      const slow = rng.int(60, 300) * MS;
      slot.steps.push({ at, run: (t) => reset(h, dev, t, { slowNotifyNs: slow }).releaseTs });
      return { dev, declared: [certain('SLOW_REVOKE', 'WARNING')] };
    },
  },
  // A reset that takes too long (device stuck returning CRS): memory_lock held for seconds, then released.
  stuck_lock: {
    fault: 'stuck_lock', eras: ALL_ERAS, lead: 0, span: 8 * S,
    install(h, id, at, { rng }) {
      const { dev, slot } = h.addScenarioDevice('vfio-pci', id, 'stuck_lock');
      const hold = rng.int(6_000, 7_500) * MS;
      slot.steps.push({ at, run: (t) => reset(h, dev, t, { opNs: hold }).releaseTs });
      return { dev, declared: [certain('LOCK_HELD_OPEN', 'WARNING')] };
    },
  },
  // The ring buffer overflows exactly over a reset's zap (6.11+: the reset path always zaps): the correlator sees
  // a RESET episode with no zap, and the loss. The SKIPPED_ZAP is inconclusive; nothing is mapped, so it is a
  // WARNING wherever the correlator starts forgetting the mappings.
  ring_loss: {
    fault: 'ring_loss', eras: UNCONDITIONAL_ERAS, lead: 0, span: 200 * MS, hostWide: true, untilEnd: true,
    install(h, id, at, { instance }) {
      const { dev, slot } = h.addScenarioDevice('vfio-pci', id, 'ring_loss', { mapAll: false });
      h.quietAround(at, at + 3.5 * S);
      slot.steps.push({ at, run: (t) => {
        h.loseFrom(dev, ['zap'], instance % 2 === 0 ? 'dropped' : 'seq_gap', id);
        const r = reset(h, dev, t);
        h.stopLosing();
        return r.releaseTs;
      } });
      return { dev, declared: [inconclusive('SKIPPED_ZAP', 'WARNING')] };
    },
  },
  // A device the collector never described (no DeviceInfo, no snapshot) on a >= 6.19 release: whether the series is
  // applied is unknown, and a reset without a DEVICE zap is a skipped zap under the unconditional era's rule:
  // inconclusive, whatever device_has_vmas says.
  unknown_device: {
    fault: 'unknown_device', eras: ['series'], lead: 400 * MS, span: 200 * MS,
    install(h, id, at) {
      const { dev, slot } = h.addScenarioDevice('vfio-pci', id, 'unknown_device', { mapAll: false, described: 'none' });
      slot.steps.push({ at: at - 300 * MS, run: (t) => {
        for (const spec of dev.bars) {
          const r = h.mmap(dev, dev.proc.main, t, spec);
          t = h.barFault(dev, dev.proc.workers[0]!, r.end, r.m);
        }
        return t;
      } });
      slot.steps.push({ at, run: (t) => reset(h, dev, t).releaseTs });
      return { dev, declared: [inconclusive('SKIPPED_ZAP', 'WARNING')] };
    },
  },

  // ------------------------------------------------------------------ field conditions (issue 13)

  // The collector starts inside a write section: the acquire (and, on DMABUF kernels, the revoke) happened before
  // it; it sees the rest (unrevoke, zap, release). That episode began before observation: no finding.
  late_start_in_window: {
    fault: 'late_start_in_window', eras: ALL_ERAS, lead: 0, span: 300 * MS, atStart: true,
    install(h, id, at) {
      const { dev, slot } = h.addScenarioDevice('vfio-pci', id, 'late_start_in_window');
      const pre = h.t0 - 2 * MS;
      if (h.era.dmabufExport) {
        // A VFIO_DEVICE_RESET in its pci_try_reset_function().
        const a = dev.proc.main;
        h.trigger(dev, a, pre, TriggerKind.RESET);
        dev.power = 0;
        h.acquire(dev, a, pre + 50 * US, 400);
        let t = pre + 60 * US;
        if (h.era.zap === 'unconditional' || dev.zapBarsOnRevoke) t = h.deviceZap(dev, a, t).end;
        h.dmabufMove(dev, a, t + 2 * US, true);
        slot.steps.push({ at, run: (t2) => {
          t2 = h.dmabufMove(dev, a, t2, false).end + 3 * US;
          h.releaseLock(dev, a, t2);
          h.triggerEnd(dev, a, t2 + 3 * US, TriggerKind.RESET, 0);
          return t2 + 10 * US;
        } });
      } else {
        // A PCI_COMMAND memory-off write that took the lock just before: the zap (6.11+) comes after the start.
        const a = dev.proc.workers[0]!;
        h.trigger(dev, a, pre, TriggerKind.MEM_DISABLE);
        let t = pre + 20 * US;
        if (h.era.zap === 'vma-list') for (const m of dev.mappings.values()) {
          h.emit(t, a, dev, 'zap', { start: m.bar * 2 ** VFIO_PCI_OFFSET_SHIFT, length: m.length, durationNs: 10 * US, target: ZapTarget.DEVICE });
          m.populated = false; t += 20 * US;
        }
        dev.memBit = false;
        h.acquire(dev, a, t + 500, 500);
        slot.steps.push({ at, run: (t2) => {
          if (h.era.zap === 'unconditional') t2 = h.deviceZap(dev, a, t2).end + 2 * US;
          h.releaseLock(dev, a, t2);
          h.triggerEnd(dev, a, t2 + 3 * US, TriggerKind.MEM_DISABLE, 2);
          return t2 + 10 * US;
        } });
        slot.steps.push({ at: at + 200 * MS, run: (t2) => configWrite(h, dev, t2, 'mem_enable').releaseTs });
      }
      return { dev, declared: [] };
    },
  },
  // The collector starts between a low-power request's trigger and its down_write: it sees a first write section
  // with no trigger that zaps and revokes and does not unrevoke (memory is off now). What DeviceInfo said of memory
  // (enabled) no longer stands: a runtime-PM entry leaves no marker, so an UNPAIRED_REVOKE can only be
  // inconclusive (even after a vCPU's ok fault just before it); a PM write's PowerTransition marker proves D3hot:
  // nothing. Then the device comes back (unrevoke).
  late_start_before_acquire: {
    fault: 'late_start_before_acquire', eras: DMABUF_ERAS, fits: current, lead: 0, span: 300 * MS, atStart: true,
    install(h, id, at, { instance }) {
      const { dev, slot } = h.addScenarioDevice('vfio-pci', id, 'late_start_before_acquire');
      h.addImporter(dev, 'mlx5_ib');
      const runtimePm = instance % 2 === 0;
      const a = runtimePm ? dev.proc.main : dev.proc.workers[0]!;
      h.trigger(dev, a, h.t0 - 20 * US, runtimePm ? TriggerKind.RUNTIME_PM_ENTRY : TriggerKind.D3HOT);
      // A vCPU touches its BAR meanwhile (the fault takes memory_lock for read before the write section does).
      const m = [...dev.mappings.values()][0]!;
      slot.steps.push({ at, run: (t) => h.barFault(dev, dev.proc.workers[1] ?? dev.proc.workers[0]!, t, m) });
      slot.steps.push({ at: at + 1 * MS, run: (t) => h.path(dev, t, runtimePm ? 'rpm_entry' : 'pm_d3hot', a, 11 * MS, { announced: true }).releaseTs });
      slot.steps.push({ at: at + 150 * MS, run: (t) => h.path(dev, t, runtimePm ? 'rpm_exit' : 'pm_d0', a, 11 * MS).releaseTs });
      return { dev, declared: runtimePm ? [inconclusive('UNPAIRED_REVOKE', 'WARNING')] : [] };
    },
  },
  // The collector starts while a guest has memory off (and the DMABUFs revoked): the zap and revoke were before it.
  // A fault fails (SIGBUS), a config write takes the lock, the guest writes memory-off again (the kernel zaps
  // again, but the first zap was never seen) and then on. Nothing certain, nothing at all.
  late_start_memory_off: {
    fault: 'late_start_memory_off', eras: ALL_ERAS, lead: 0, span: 600 * MS, atStart: true,
    install(h, id, at) {
      const { dev, slot } = h.addScenarioDevice('vfio-pci', id, 'late_start_memory_off');
      h.addImporter(dev, 'mlx5_ib');
      configWrite(h, dev, h.t0 - 400 * MS, 'mem_disable');
      const m = [...dev.mappings.values()][0]!;
      slot.steps.push({ at, run: (t) => h.barFault(dev, dev.proc.workers[0]!, t, m) });
      slot.steps.push({ at: at + 100 * MS, run: (t) => h.path(dev, t, 'lock_and_enable', dev.proc.workers[0]!, 200 * US).releaseTs });
      slot.steps.push({ at: at + 200 * MS, run: (t) => configWrite(h, dev, t, 'mem_disable').releaseTs });
      slot.steps.push({ at: at + 400 * MS, run: (t) => configWrite(h, dev, t, 'mem_enable').releaseTs });
      // Before 6.11 the second memory-off write zaps nothing (no VMA was faulted back onto vma_list): the snapshot's
      // mapping, taken as populated, was reached by no zap. Whether it had PTEs is not a kernel fact: inconclusive.
      // On DMABUF kernels the first write section seen (the MSI-X one) has no trigger: memory may have been enabled
      // in it for all the correlator can know, and the DMABUFs stay revoked: an inconclusive UNPAIRED_REVOKE.
      const declared = h.era.zap === 'vma-list' ? [inconclusive('SKIPPED_ZAP', 'CRITICAL')] : [];
      if (h.era.dmabufExport) declared.push(inconclusive('UNPAIRED_REVOKE', 'WARNING'));
      return { dev, declared };
    },
  },
  // Ioctls and config writes that return before taking the lock, or fail inside it, followed within 1 s by another
  // write section of the same task. The collector reports TriggerEnd: the early return voids the trigger.
  failed_ioctl: {
    fault: 'failed_ioctl', eras: ALL_ERAS, fits: current, lead: 0, span: 600 * MS,
    install(h, id, at, { instance }) {
      const { dev, slot } = h.addScenarioDevice('vfio-pci', id, 'failed_ioctl');
      const main = dev.proc.main, w = dev.proc.workers[0]!;
      switch (instance % 4) {
        case 0: // VFIO_DEVICE_RESET on a device without reset_works: -EINVAL; then an MSI-X setup takes the lock
          dev.resetWorks = false;
          slot.steps.push({ at, run: (t) => {
            t = reset(h, dev, t, { earlyReturn: true, ret: -22 }).releaseTs + 200 * US;
            return h.path(dev, t, 'lock_and_enable', main, 200 * US).releaseTs;
          } });
          break;
        case 1: // pci_try_reset_function() fails (-EAGAIN: the device lock is contended) inside the window
          slot.steps.push({ at, run: (t) => reset(h, dev, h.prepareRevoke(dev, t), { ret: -11 }).releaseTs });
          break;
        case 2: // the FLR bit written on a device whose capability has no FLR: the write returns, no lock
          slot.steps.push({ at, run: (t) => {
            t = h.path(dev, t, 'exp_flr', w, 0, { earlyReturn: true, ret: 2 }).releaseTs + 150 * US;
            return h.path(dev, t, 'lock_and_enable', w, 200 * US).releaseTs;
          } });
          break;
        default: // an early-returning reset, then a PCI_COMMAND write of the same task
          dev.resetWorks = false;
          slot.steps.push({ at, run: (t) => {
            t = reset(h, dev, t, { earlyReturn: true, ret: -22 }).releaseTs + 300 * US;
            return h.path(dev, t, 'mem_enable', main, 200 * US).releaseTs;
          } });
      }
      return { dev, declared: [] };
    },
  },
  // The same on a host whose collector does not report TriggerEnd: an early-returning reset cannot be told from
  // one that took the lock. If the task's next write section has no trigger of its own, the reset's trigger names
  // it and any finding resting on it alone is inconclusive; a newer trigger of the task replaces it (stale).
  failed_ioctl_older_collector: {
    fault: 'failed_ioctl_older_collector', eras: ALL_ERAS, fits: older, lead: 0, span: 400 * MS,
    install(h, id, at, { instance }) {
      const { dev, slot } = h.addScenarioDevice('vfio-pci', id, 'failed_ioctl_older_collector');
      dev.resetWorks = false;
      const main = dev.proc.main;
      const lockOnly = instance % 2 === 0;
      slot.steps.push({ at, run: (t) => {
        t = reset(h, dev, t, { earlyReturn: true, ret: -22 }).releaseTs + 300 * US;
        return h.path(dev, t, lockOnly ? 'lock_and_enable' : 'mem_enable', main, 200 * US).releaseTs;
      } });
      // A RESET episode without a zap: the unconditional era's rule, or (pre-6.11) populated mappings no zap reached.
      const declared = lockOnly && h.era.name !== 'series' ? [inconclusive('SKIPPED_ZAP', 'CRITICAL')] : [];
      return { dev, declared };
    },
  },
  // Another task's PCI_COMMAND memory-off write announced while a task holds the lock (MSI-X setup): it blocks in
  // down_write and gets its own episode after the release. The holder's episode has no trigger.
  other_task_config_write: {
    fault: 'other_task_config_write', eras: ALL_ERAS, lead: 0, span: 600 * MS,
    install(h, id, at, { rng }) {
      const { dev, slot } = h.addScenarioDevice('vfio-pci', id, 'other_task_config_write');
      const holder = dev.proc.main, other = dev.proc.workers[0]!;
      slot.steps.push({ at, run: (t) => {
        t = h.prepareRevoke(dev, t);
        let announced = 0;
        const a = h.path(dev, t, 'lock_and_enable', holder, rng.int(20, 80) * MS, { inside: (ti) => {
          announced = ti;
          h.trigger(dev, other, ti, TriggerKind.MEM_DISABLE);
          return ti + 5 * US;
        } });
        // pre-6.11 zaps run right away, before down_write blocks until the holder's up_write.
        return configWrite(h, dev, announced + 20 * US, 'mem_disable', { actor: other, announced: true, waitNs: 1, notBefore: a.releaseTs + 4 * US }).releaseTs;
      } });
      slot.steps.push({ at: at + 400 * MS, run: (t) => configWrite(h, dev, t, 'mem_enable', { actor: other }).releaseTs });
      return { dev, declared: [] };
    },
  },
  // A hot reset of a set whose second function nobody opened (open_count 0, no mappings, no DMABUFs); the trigger
  // is announced on the device whose fd the ioctl used. Nothing to report on either.
  unopened_sibling: {
    fault: 'unopened_sibling', eras: ALL_ERAS, fits: current, lead: 0, span: 2 * S,
    install(h, id, at, { instance }) {
      const { dev, slot } = h.addScenarioDevice('vfio-pci', id, 'unopened_sibling');
      dev.group = h.newGroupId();
      const sib = h.addUnopenedSibling(dev, instance % 2 === 0);
      slot.steps.push({ at, run: (t) => h.hotReset([dev, sib], dev.proc.main, h.prepareRevoke(dev, t), false).end });
      return { dev, declared: [] };
    },
  },
  // A VF (no_command_memory): a memory-off write zaps and revokes, but memory stays enabled (the kernel unrevokes
  // before up_write) and a fault succeeds. The collector reports no_command_memory: nothing to report.
  vf_memory_off: {
    fault: 'vf_memory_off', eras: ALL_ERAS, fits: current, lead: 0, span: 300 * MS,
    install(h, id, at) {
      const { dev, slot } = h.addScenarioDevice('mlx5_vfio_pci', id, 'vf_memory_off', { vf: true });
      const m = [...dev.mappings.values()][0]!;
      slot.steps.push({ at, run: (t) => {
        t = configWrite(h, dev, t, 'mem_disable').releaseTs + 1 * MS;
        t = h.barFault(dev, dev.proc.workers[0]!, t, m) + 1 * MS;
        return configWrite(h, dev, t, 'mem_enable').releaseTs;
      } });
      return { dev, declared: [] };
    },
  },
  // The same VF behind an older collector (no no_command_memory) on a kernel without DMABUFs (no unrevoke to prove
  // memory enabled): the ok fault after a memory-off write looks like PTEs installed with memory disabled, but
  // only if the device is not a VF: an inconclusive FAULT_WHILE_REVOKED.
  vf_older_collector: {
    fault: 'vf_older_collector', eras: PRE_DMABUF_ERAS, fits: older, lead: 0, span: 300 * MS,
    install(h, id, at) {
      const { dev, slot } = h.addScenarioDevice('mlx5_vfio_pci', id, 'vf_older_collector', { vf: true });
      const m = [...dev.mappings.values()][0]!;
      slot.steps.push({ at, run: (t) => {
        t = configWrite(h, dev, t, 'mem_disable').releaseTs + 1 * MS;
        t = h.barFault(dev, dev.proc.workers[0]!, t, m) + 1 * MS;
        return configWrite(h, dev, t, 'mem_enable').releaseTs;
      } });
      return { dev, declared: [inconclusive('FAULT_WHILE_REVOKED', 'CRITICAL')] };
    },
  },
  // Loss long before: the ring buffer loses a whole memory-on write (memory off was seen before it, and a fault that
  // failed). Seconds later a fault succeeds and the guest writes memory-off again: what the correlator knew before
  // the loss no longer stands, so neither is a finding.
  loss_long_before: {
    fault: 'loss_long_before', eras: ALL_ERAS, lead: 4.5 * S, span: 14 * S, hostWide: true, untilEnd: true,
    install(h, id, at, { instance }) {
      const { dev, slot } = h.addScenarioDevice('vfio-pci', id, 'loss_long_before');
      h.quietAround(at - 4.5 * S, at + 3.5 * S);
      const m = [...dev.mappings.values()][0]!;
      const w = dev.proc.workers[0]!;
      slot.steps.push({ at: at - 4 * S, run: (t) => configWrite(h, dev, h.prepareRevoke(dev, t), 'mem_disable').releaseTs });
      // The last event before the loss: its window (from the host time then − the lateness) starts after the write.
      slot.steps.push({ at: at - 1 * S, run: (t) => h.barFault(dev, w, t, m) });
      slot.steps.push({ at, run: (t) => {
        h.loseFrom(dev, undefined, (instance >> 1) % 2 === 0 ? 'dropped' : 'seq_gap', id);
        const r = configWrite(h, dev, t, 'mem_enable');
        h.stopLosing();
        return r.releaseTs;
      } });
      const faultFirst = instance % 2 === 0;
      slot.steps.push({ at: at + 12 * S, run: (t) => {
        if (faultFirst) t = h.barFault(dev, w, t, m) + 1 * MS;
        t = configWrite(h, dev, t, 'mem_disable').releaseTs + 2 * MS;
        t = configWrite(h, dev, t, 'mem_enable').releaseTs + 1 * MS;
        if (!faultFirst) t = h.barFault(dev, w, t, m);
        return t;
      } });
      // In the series the memory-off write revokes DMABUFs without a DEVICE zap (vfio-pci does not set
      // zap_bars_on_revoke): with the mapping list unknown since the loss, only device_has_vmas = false settles it.
      // Before 6.11, when no fault brought a VMA back onto vma_list, that write zaps nothing: a revoke episode without
      // a zap, the mapping list unknown since the loss.
      const unseenRevoke = (h.era.zap === 'conditional' && !h.readsVmas) || (h.era.zap === 'vma-list' && !faultFirst);
      return { dev, declared: unseenRevoke ? [inconclusive('SKIPPED_ZAP', 'WARNING')] : [] };
    },
  },
  // A driver fault handler that skips the memory-enabled check (or, in the series, the DMABUF's revoked flag):
  // PTEs installed while the guest has memory off. The hazard the protocol exists to prevent.
  fault_while_revoked: {
    fault: 'fault_while_revoked', eras: ALL_ERAS, fits: current, lead: 0, span: 300 * MS,
    install(h, id, at) {
      const { dev, slot } = h.addScenarioDevice('vfio-pci', id, 'fault_while_revoked');
      const m = [...dev.mappings.values()][0]!;
      slot.steps.push({ at, run: (t) => {
        t = configWrite(h, dev, t, 'mem_disable').releaseTs + 1 * MS;
        t = h.barFault(dev, dev.proc.workers[1] ?? dev.proc.workers[0]!, t, m, true) + 1 * MS;
        return configWrite(h, dev, t, 'mem_enable').releaseTs;
      } });
      return { dev, declared: [certain('FAULT_WHILE_REVOKED', 'CRITICAL')] };
    },
  },
  // A guest that writes memory-off twice: the kernel zaps again although nothing could have been faulted in
  // (the kernel lab's cmd_double_disable trace).
  repeated_memory_off: {
    fault: 'repeated_memory_off', eras: UNCONDITIONAL_ERAS, fits: current, lead: 0, span: 300 * MS,
    install(h, id, at) {
      const { dev, slot } = h.addScenarioDevice('vfio-pci', id, 'repeated_memory_off');
      slot.steps.push({ at, run: (t) => {
        t = configWrite(h, dev, t, 'mem_disable').releaseTs + 2 * MS;
        t = configWrite(h, dev, t, 'mem_disable').releaseTs + 2 * MS;
        return configWrite(h, dev, t, 'mem_enable').releaseTs;
      } });
      return { dev, declared: [certain('REDUNDANT_ZAP', 'INFO')] };
    },
  },
  // nvgrace-gpu with its device-memory BARs unmapped: the series zaps by design (zap_bars_on_revoke is set for
  // custom vm_ops), finding nothing to zap. No finding; each such zap counts in intended_empty_zaps.
  nvgrace_empty_zaps: {
    fault: 'nvgrace_empty_zaps', eras: ['series'], prefer: (h) => h.flavor === 'grace', lead: 0, span: 600 * MS,
    install(h, id, at) {
      const { dev, slot } = h.addScenarioDevice('nvgrace-gpu', id, 'nvgrace_empty_zaps', { profile: 1, mapAll: false });
      h.addMapping(dev, dev.bars[0]!, true);
      slot.steps.push({ at, run: (t) => reset(h, dev, t).releaseTs });
      slot.steps.push({ at: at + 300 * MS, run: (t) => h.path(dev, t, 'exp_flr', dev.proc.workers[0]!, 101 * MS).releaseTs });
      return { dev, declared: [] };
    },
  },
  // A reset that never returns; the host goes quiet (no more events, heartbeats only): the held lock is found
  // through now_ns.
  hung_reset: {
    fault: 'hung_reset', eras: ALL_ERAS, lead: 0, span: 8 * S, untilEnd: true,
    install(h, id, at) {
      const { dev, slot } = h.addScenarioDevice('vfio-pci', id, 'hung_reset');
      h.quietAfter(at);
      slot.steps.push({ at, run: (t) => { reset(h, dev, t, { hang: true }); return Infinity; } });
      return { dev, declared: [certain('LOCK_HELD_OPEN', 'WARNING')] };
    },
  },
  // VFIO_DEVICE_RESET of a device in D3hot whose unrevoke check runs before vfio_pci_set_power_state(D0) (it sees
  // D3hot: memory disabled): the DMABUFs stay revoked with memory enabled. The reset's zap after the D3hot one, with
  // the DMABUFs revoked all along, is also a redundant one on kernels that zap unconditionally.
  reset_from_d3hot: {
    fault: 'reset_from_d3hot', eras: DMABUF_ERAS, fits: current, lead: 100 * MS, span: 700 * MS,
    install(h, id, at) {
      const { dev, slot } = h.addScenarioDevice('vfio-pci', id, 'reset_from_d3hot');
      h.addImporter(dev, 'mlx5_ib');
      slot.steps.push({ at: at - 100 * MS, run: (t) => h.path(dev, t, 'pm_d3hot', dev.proc.workers[0]!, 11 * MS).releaseTs });
      slot.steps.push({ at, run: (t) => reset(h, dev, t, { staleUnrevokeCheck: true }).releaseTs });
      slot.steps.push({ at: at + 500 * MS, run: (t) => configWrite(h, dev, t, 'mem_enable').releaseTs });
      const declared = [certain('UNPAIRED_REVOKE', 'WARNING')];
      if (h.era.zap === 'unconditional') declared.push(certain('REDUNDANT_ZAP', 'INFO'));
      return { dev, declared };
    },
  },
  // The series: a reset forgets its unrevoke (UNPAIRED_REVOKE); the guest then remaps its BAR. The new mapping's
  // DMABUF is made with memory enabled, so it is not revoked (vfio_pci_dmabuf_export(): priv->revoked =
  // !__vfio_pci_memory_enabled(vdev)) and its fault rightly installs PTEs: no FAULT_WHILE_REVOKED, although the
  // device's older DMABUFs stay revoked. A later reset revokes and unrevokes everything.
  remap_after_unpaired: {
    fault: 'remap_after_unpaired', eras: ['series'], fits: current, lead: 0, span: 1_500 * MS,
    install(h, id, at) {
      const { dev, slot } = h.addScenarioDevice('vfio-pci', id, 'remap_after_unpaired', { profile: 2 });
      h.addImporter(dev, 'mlx5_ib');
      slot.steps.push({ at, run: (t) => reset(h, dev, t, { omitUnrevoke: true }).releaseTs });
      slot.steps.push({ at: at + 300 * MS, run: (t) => {
        const old = [...dev.mappings.values()][0]!;
        t = h.munmap(dev, dev.proc.main, t, old);
        const r = h.mmap(dev, dev.proc.main, t + 50 * US, dev.bars[0]!);
        return h.barFault(dev, dev.proc.workers[0]!, r.end, r.m);
      } });
      slot.steps.push({ at: at + 1_200 * MS, run: (t) => reset(h, dev, t).releaseTs });
      return { dev, declared: [certain('UNPAIRED_REVOKE', 'WARNING')] };
    },
  },
  // A kernel worker zapping the BARs while a reset holds memory_lock: the zap does not hold the lock, it is not a
  // redundant zap of the holder.
  zap_by_other_task: {
    fault: 'zap_by_other_task', eras: LOCKED_ZAP_ERAS, lead: 0, span: 200 * MS,
    install(h, id, at) {
      const { dev, slot } = h.addScenarioDevice('vfio-pci', id, 'zap_by_other_task');
      slot.steps.push({ at, run: (t) => reset(h, dev, t, { opNs: 40 * MS, inside: (ti) => h.strayZap(dev, h.kworker, ti).zap!.durationNs! + ti + 2 * US }).releaseTs });
      return { dev, declared: [certain('LOCK_NOT_HELD', 'CRITICAL')] };
    },
  },
  // 6.11 up to the series every revoking path zaps, mapped or not: a PM write to D3hot that omits its zap is a
  // skipped zap even with nothing mapped (WARNING), CRITICAL with a populated mapping.
  skipped_zap_unconditional: {
    fault: 'skipped_zap_unconditional', eras: UNCONDITIONAL_ERAS, fits: current, lead: 0, span: 300 * MS,
    install(h, id, at, { instance }) {
      const mapped = instance % 2 === 1;
      const { dev, slot } = h.addScenarioDevice('vfio-pci', id, 'skipped_zap_unconditional', { mapAll: mapped });
      slot.steps.push({ at, run: (t) => {
        t = h.path(dev, t, 'pm_d3hot', dev.proc.workers[0]!, 11 * MS, { omitZap: true }).releaseTs + 20 * MS;
        return h.path(dev, t, 'pm_d0', dev.proc.workers[0]!, 11 * MS).releaseTs;
      } });
      return { dev, declared: [certain('SKIPPED_ZAP', mapped ? 'CRITICAL' : 'WARNING')] };
    },
  },
};

export const FAULT_NAMES = Object.keys(FAULTS) as FaultName[];
