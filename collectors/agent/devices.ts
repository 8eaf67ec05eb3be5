// Device discovery (sysfs) and the start-time mapping snapshot (/proc/<pid>/maps): the agent tells the
// correlator which vfio devices exist and which BAR mappings already live before any probe saw them.
import { existsSync, readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { basename } from 'node:path';
import { VFIO_PCI_OFFSET_SHIFT } from '../../services/core/model.js';
import { mappingId } from './decoder.js';

export interface VfioDevice { address: string; driver: string; iommuGroup?: string }

/** vfio-pci and the vfio-pci-core variant drivers (nvgrace-gpu, mlx5-vfio-pci, hisi_acc, pds, virtio, ...). */
export function isVfioDriver(driver: string, sysDevice?: string): boolean {
  if (/vfio/.test(driver) || /^(nvgrace[-_]gpu|hisi[-_]acc)/.test(driver)) return true;
  return !!sysDevice && existsSync(`${sysDevice}/vfio-dev`);
}

export function listVfioDevices(sysfs = '/sys'): VfioDevice[] {
  const dir = `${sysfs}/bus/pci/devices`;
  const out: VfioDevice[] = [];
  let names: string[] = [];
  try { names = readdirSync(dir); } catch { return out; }
  for (const address of names.sort()) {
    let driver = '';
    try { driver = basename(readlinkSync(`${dir}/${address}/driver`)); } catch { continue; }
    if (!isVfioDriver(driver, `${dir}/${address}`)) continue;
    let iommuGroup: string | undefined;
    try { iommuGroup = basename(readlinkSync(`${dir}/${address}/iommu_group`)); } catch { iommuGroup = undefined; }
    out.push({ address, driver, iommuGroup });
  }
  return out;
}

export interface MapsEntry { start: bigint; end: bigint; offset: bigint; path: string }

/** /proc/<pid>/maps lines of vfio device files ("anon_inode:[vfio-device]"; cdev: "/dev/vfio/devices/vfioN"). */
export function parseVfioMaps(text: string): MapsEntry[] {
  const out: MapsEntry[] = [];
  for (const line of text.split('\n')) {
    const m = /^([0-9a-f]+)-([0-9a-f]+)\s+\S+\s+([0-9a-f]+)\s+\S+\s+\d+\s+(.*)$/.exec(line);
    if (!m || !/\[vfio-device\]|\/dev\/vfio\/devices\//.test(m[4]!)) continue;
    out.push({ start: BigInt('0x' + m[1]), end: BigInt('0x' + m[2]), offset: BigInt('0x' + m[3]), path: m[4]!.trim() });
  }
  return out;
}

/** Which vfio devices a process holds open: fdinfo "vfio-device-syspath" (6.8+), else the device cdev names. */
export function openVfioDevices(pid: number, proc = '/proc'): string[] {
  const devs = new Set<string>();
  let fds: string[] = [];
  try { fds = readdirSync(`${proc}/${pid}/fdinfo`); } catch { return []; }
  for (const fd of fds) {
    try {
      const m = /vfio-device-syspath:\s*\S*\/([0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7])\s/.exec(readFileSync(`${proc}/${pid}/fdinfo/${fd}`, 'utf8') + '\n');
      if (m) devs.add(m[1]!);
    } catch { /* fd closed meanwhile */ }
  }
  return [...devs];
}

export interface SnapshotMapping { pid: number; device: string; bar: number; mappingId: number; length: number }

/** Every live BAR mapping of a vfio device fd, attributed to its device when that is unambiguous. */
export function snapshotMappings(devices: VfioDevice[], proc = '/proc'): { mappings: SnapshotMapping[]; ambiguous: number } {
  const mappings: SnapshotMapping[] = [];
  let ambiguous = 0;
  let pids: number[] = [];
  try { pids = readdirSync(proc).filter((p) => /^\d+$/.test(p)).map(Number); } catch { return { mappings, ambiguous }; }
  for (const pid of pids) {
    let entries: MapsEntry[];
    try { entries = parseVfioMaps(readFileSync(`${proc}/${pid}/maps`, 'utf8')); } catch { continue; }
    if (!entries.length) continue;
    const open = openVfioDevices(pid, proc);
    const device = open.length === 1 ? open[0] : devices.length === 1 ? devices[0]!.address : undefined;
    for (const e of entries) {
      if (!device) { ambiguous++; continue; }
      mappings.push({ pid, device, bar: Number(e.offset >> BigInt(VFIO_PCI_OFFSET_SHIFT)), mappingId: mappingId(pid, e.start), length: Number(e.end - e.start) });
    }
  }
  return { mappings, ambiguous };
}
