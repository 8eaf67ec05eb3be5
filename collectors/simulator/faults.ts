// Injected faults: each is a scenario on a dedicated device, scripted so that it yields exactly the
// findings listed here and nothing else (DESIGN §4 rules), with the ground truth recorded as it happens.
import { TriggerKind } from '../../services/core/model.js';
import type { EraName } from './eras.js';
import type { Device, EpisodeRecord, HostSim } from './host.js';
import type { Rng } from './rng.js';
import type { FaultName, TruthFinding } from './truth.js';

const MS = 1_000_000, S = 1_000_000_000;

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
  /** Ring-buffer loss marks the whole host: keep other scenarios well away. */
  hostWide?: boolean;
  /** Build the device and its script; returns how many findings it must produce. */
  install: (h: HostSim, id: string, at: number, ctx: { rng: Rng; ordinal: number }) => number;
}

type Found = Omit<TruthFinding, 'hostname' | 'bootId' | 'kernelRelease' | 'fault' | 'scenario' | 'device' | 'driver'>;

function record(h: HostSim, dev: Device, fault: FaultName, id: string, f: Found): void {
  h.addFinding({ ...f, device: dev.addr, driver: dev.driver, fault, scenario: id });
}

function inEpisode(r: EpisodeRecord, kind: string, severity: string, tsNs: number, inconclusive = false): Found {
  return { kind, severity, acquireTsNs: r.acquireTs, releaseTsNs: r.releaseTs, tsNs, inconclusive };
}

const ALL_ERAS: readonly EraName[] = ['pre-6.11', '6.12', '6.19', '7.1', 'series'];
const LOCKED_ZAP_ERAS: readonly EraName[] = ['6.12', '6.19', '7.1'];
const DMABUF_ERAS: readonly EraName[] = ['6.19', '7.1', 'series'];

/** A VM reset under the lock (VFIO_DEVICE_RESET through a PM reset: a few ms). */
function reset(h: HostSim, dev: Device, t: number, extra: Partial<Parameters<HostSim['episode']>[2]> = {}): EpisodeRecord {
  return h.episode(dev, t, { actor: dev.proc.main, trigger: TriggerKind.RESET, revoke: true, opNs: 6 * MS, ...extra });
}

export const FAULTS: Record<FaultName, FaultSpec> = {
  // The series zaps the vdev mapping only when zap_bars_on_revoke is set; a driver with its own vm_ops
  // (nvgrace-gpu device memory) that does not set it leaves populated PTEs through a reset.
  forgot_opt_in: {
    fault: 'forgot_opt_in', eras: ['series'], prefer: (h) => h.flavor === 'grace', lead: 300 * MS, span: 200 * MS,
    install(h, id, at) {
      const { dev, slot } = h.addScenarioDevice('nvgrace-gpu', id, { profile: 0 });
      dev.zapBarsOnRevoke = false;
      const custom = [...dev.mappings.values()].find((m) => m.bar === 2)!;
      slot.steps.push({ at: at - 200 * MS, run: (t) => h.barFault(dev, dev.proc.workers[0]!, t, custom) });
      slot.steps.push({ at, run: (t) => {
        const r = reset(h, dev, t);
        record(h, dev, 'forgot_opt_in', id, inEpisode(r, 'SKIPPED_ZAP', 'CRITICAL', r.releaseTs));
        return r.releaseTs;
      } });
      return 1;
    },
  },
  // Same driver bug, but the custom mapping was never faulted: nothing could be touched, still wrong.
  forgot_opt_in_unpopulated: {
    fault: 'forgot_opt_in_unpopulated', eras: ['series'], prefer: (h) => h.flavor === 'grace', lead: 300 * MS, span: 200 * MS,
    install(h, id, at) {
      const { dev, slot } = h.addScenarioDevice('nvgrace-gpu', id, { profile: 0, mapAll: false });
      dev.zapBarsOnRevoke = false;
      h.addMapping(dev, dev.bars[0]!, true);
      slot.steps.push({ at: at - 150 * MS, run: (t) => h.mmap(dev, dev.proc.main, t, dev.bars[1]!).end });
      slot.steps.push({ at, run: (t) => {
        const r = reset(h, dev, t);
        record(h, dev, 'forgot_opt_in_unpopulated', id, inEpisode(r, 'SKIPPED_ZAP', 'WARNING', r.releaseTs));
        return r.releaseTs;
      } });
      return 1;
    },
  },
  // The collector missed the custom mmap (made before it started, absent from the snapshot); the kernel
  // fact DmaBufRevoke.device_has_vmas=true still proves the skipped zap: certain, WARNING.
  forgot_opt_in_unseen: {
    fault: 'forgot_opt_in_unseen', eras: ['series'], fits: (h) => h.readsVmas, prefer: (h) => h.flavor === 'grace',
    lead: 0, span: 200 * MS,
    install(h, id, at) {
      const { dev, slot } = h.addScenarioDevice('nvgrace-gpu', id, { profile: 0, mapAll: false });
      dev.zapBarsOnRevoke = false;
      dev.hiddenVmas = true;
      h.addMapping(dev, dev.bars[0]!, true);
      slot.steps.push({ at, run: (t) => {
        const r = reset(h, dev, t);
        record(h, dev, 'forgot_opt_in_unseen', id, inEpisode(r, 'SKIPPED_ZAP', 'WARNING', r.releaseTs));
        return r.releaseTs;
      } });
      return 1;
    },
  },
  // hisi_acc's .mmap only wraps the core one (DMABUF-backed): a driver like it that keeps
  // zap_bars_on_revoke walks an empty vdev mapping under the write lock at every revoke.
  no_opt_out: {
    fault: 'no_opt_out', eras: ['series'], prefer: (h) => h.flavor === 'kunpeng', lead: 0, span: 600 * MS,
    install(h, id, at) {
      const { dev, slot } = h.addScenarioDevice('hisi_acc_vfio_pci', id);
      dev.zapBarsOnRevoke = true;
      slot.steps.push({ at, run: (t) => {
        const r = reset(h, dev, t);
        record(h, dev, 'no_opt_out', id, inEpisode(r, 'REDUNDANT_ZAP', 'INFO', r.zaps[0]!.tsNs!));
        return r.releaseTs;
      } });
      slot.steps.push({ at: at + 400 * MS, run: (t) => {
        const r = h.episode(dev, t, { actor: dev.proc.workers[0]!, trigger: TriggerKind.FLR, revoke: true, opNs: 101 * MS });
        record(h, dev, 'no_opt_out', id, inEpisode(r, 'REDUNDANT_ZAP', 'INFO', r.zaps[0]!.tsNs!));
        return r.releaseTs;
      } });
      return 2;
    },
  },
  // The same range zapped twice in one episode with no fault in between: the second walk is wasted.
  double_zap: {
    fault: 'double_zap', eras: LOCKED_ZAP_ERAS, lead: 0, span: 200 * MS,
    install(h, id, at) {
      const { dev, slot } = h.addScenarioDevice('vfio-pci', id);
      slot.steps.push({ at, run: (t) => {
        const r = reset(h, dev, t, { doubleZap: true });
        record(h, dev, 'double_zap', id, inEpisode(r, 'REDUNDANT_ZAP', 'INFO', r.zaps[1]!.tsNs!));
        return r.releaseTs;
      } });
      return 1;
    },
  },
  // A reset path that forgets vfio_pci_dma_buf_move(vdev, false) before up_write: importers stay cut off.
  // A later correct reset (the VM reboots) revokes and unrevokes again.
  missing_unrevoke: {
    fault: 'missing_unrevoke', eras: DMABUF_ERAS, lead: 0, span: 1_500 * MS,
    install(h, id, at) {
      const { dev, slot } = h.addScenarioDevice('vfio-pci', id);
      h.addImporter(dev, 'mlx5_ib');
      slot.steps.push({ at, run: (t) => {
        const r = reset(h, dev, t, { skipUnrevoke: true });
        record(h, dev, 'missing_unrevoke', id, inEpisode(r, 'UNPAIRED_REVOKE', 'WARNING', r.releaseTs));
        return r.releaseTs;
      } });
      slot.steps.push({ at: at + 1_200 * MS, run: (t) => reset(h, dev, t).releaseTs });
      return 1;
    },
  },
  // An unrevoke with nothing revoked (memory "enabled" while it already was).
  unrevoke_without_revoke: {
    fault: 'unrevoke_without_revoke', eras: DMABUF_ERAS, lead: 0, span: 100 * MS,
    install(h, id, at) {
      const { dev, slot } = h.addScenarioDevice('vfio-pci', id);
      h.addImporter(dev, 'iommufd');
      slot.steps.push({ at, run: (t) => {
        const r = h.episode(dev, t, { actor: dev.proc.workers[0]!, trigger: TriggerKind.MEM_ENABLE, revoke: false, opNs: 300_000, forceUnrevoke: true });
        record(h, dev, 'unrevoke_without_revoke', id, inEpisode(r, 'UNREVOKE_WITHOUT_REVOKE', 'WARNING', r.unrevoke!.tsNs!));
        return r.releaseTs;
      } });
      return 1;
    },
  },
  // unmap_mapping_range on the vdev mapping from a path that does not hold memory_lock (>= 6.11: a
  // fault can race the zap and re-install PTEs).
  zap_outside_lock: {
    fault: 'zap_outside_lock', eras: LOCKED_ZAP_ERAS, lead: 0, span: 50 * MS,
    install(h, id, at) {
      const { dev, slot } = h.addScenarioDevice('vfio-pci', id);
      slot.steps.push({ at, run: (t) => {
        const ev = h.strayZap(dev, t);
        record(h, dev, 'zap_outside_lock', id, { kind: 'LOCK_NOT_HELD', severity: 'CRITICAL', acquireTsNs: 0, releaseTsNs: 0, tsNs: ev.tsNs!, inconclusive: false });
        return t + ev.zap!.durationNs! + 1;
      } });
      return 1;
    },
  },
  // A GPU importer whose move_notify waits on fences for tens to hundreds of ms (dma_resv_wait_timeout).
  slow_importer: {
    fault: 'slow_importer', eras: DMABUF_ERAS, lead: 0, span: 600 * MS,
    install(h, id, at, { rng }) {
      const { dev, slot } = h.addScenarioDevice('vfio-pci', id);
      dev.importers = [];
      h.addImporter(dev, 'mlx5_ib');
      h.addImporter(dev, 'amdgpu');
      const slow = rng.int(60, 300) * MS;
      slot.steps.push({ at, run: (t) => {
        const r = reset(h, dev, t, { slowNotifyNs: slow });
        record(h, dev, 'slow_importer', id, inEpisode(r, 'SLOW_REVOKE', 'WARNING', r.revokeEnd));
        return r.releaseTs;
      } });
      return 1;
    },
  },
  // A reset that never finishes in time (device stuck returning CRS): memory_lock held for seconds.
  stuck_lock: {
    fault: 'stuck_lock', eras: ALL_ERAS, lead: 0, span: 8 * S,
    install(h, id, at, { rng }) {
      const { dev, slot } = h.addScenarioDevice('vfio-pci', id);
      const hold = rng.int(6_000, 7_500) * MS;
      slot.steps.push({ at, run: (t) => {
        const r = reset(h, dev, t, { opNs: hold });
        record(h, dev, 'stuck_lock', id, inEpisode(r, 'LOCK_HELD_OPEN', 'WARNING', r.acquireTs + 5 * S));
        return r.releaseTs;
      } });
      return 1;
    },
  },
  // The ring buffer overflows exactly over a reset's zap: the correlator sees a revoke with a populated
  // mapping and no zap. It must report the SKIPPED_ZAP as inconclusive (the episode is incomplete).
  ring_loss: {
    fault: 'ring_loss', eras: ['pre-6.11', '6.12', '6.19', '7.1'], lead: 0, span: 200 * MS, hostWide: true,
    install(h, id, at, { ordinal }) {
      const { dev, slot } = h.addScenarioDevice('vfio-pci', id, { profile: 2 });
      slot.steps.push({ at, run: (t) => {
        const r = reset(h, dev, t);
        h.dropEvents(r.zaps, ordinal % 2 === 0 ? 'dropped' : 'seq_gap', id);
        record(h, dev, 'ring_loss', id, inEpisode(r, 'SKIPPED_ZAP', 'CRITICAL', r.releaseTs, true));
        return r.releaseTs;
      } });
      return 1;
    },
  },
  // A device the collector never described (no DeviceInfo, no snapshot): a DMABUF-only revoke on the
  // series cannot be judged, so it is an inconclusive SKIPPED_ZAP, unless the kernel fact
  // device_has_vmas=false (probes reading i_mmap) settles it: then nothing.
  unknown_device: {
    fault: 'unknown_device', eras: ['series'], prefer: (h) => !h.readsVmas, lead: 400 * MS, span: 200 * MS,
    install(h, id, at) {
      const { dev, slot } = h.addScenarioDevice('vfio-pci', id, { mapAll: false });
      dev.known = false;
      slot.steps.push({ at: at - 300 * MS, run: (t) => {
        for (const spec of dev.bars) {
          const r = h.mmap(dev, dev.proc.main, t, spec);
          t = h.barFault(dev, dev.proc.workers[0]!, r.end, r.m);
        }
        return t;
      } });
      slot.steps.push({ at, run: (t) => {
        const r = reset(h, dev, t);
        if (!h.readsVmas) record(h, dev, 'unknown_device', id, inEpisode(r, 'SKIPPED_ZAP', 'WARNING', r.releaseTs, true));
        return r.releaseTs;
      } });
      return h.readsVmas ? 0 : 1;
    },
  },
};

export const FAULT_NAMES = Object.keys(FAULTS) as FaultName[];

