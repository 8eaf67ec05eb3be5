// Mapping state of one device (docs/rules.md): live BAR mappings, their backing, whether PTEs are populated.
import { Backing, BAR_REGION_BYTES, type Backing as BackingT } from '../model.js';

export interface Mapping {
  bar: number;
  backing: BackingT;
  /** Has populated PTEs: set by an ok fault (vfio_pci_mmap_huge_fault) or a snapshot, cleared by a zap/revoke. */
  populated: boolean;
  /** An ok fault was seen on it: before 6.11 it is then on vdev->vma_list (a snapshot's `populated` is an assumption). */
  faulted: boolean;
  /** DMABUF-backed: its DMABUF's priv->revoked, and whether a kernel fact established it (export with memory state
   * known, a revoke or unrevoke of the device's DMABUFs, an ok fault). */
  revoked: boolean;
  revokedKnown: boolean;
}

/** [start, start+length) of a Zap reaches BAR `bar`'s region [bar<<40, (bar+1)<<40). docs/rules.md says
 * "contains bar<<40"; for whole-range zaps (0, 6<<40) this is the same, and per-VMA zap_vma_ptes ranges
 * (pre-6.11) that start inside a BAR still count for that BAR. */
export function zapReachesBar(start: number, length: number, bar: number): boolean {
  const lo = bar * BAR_REGION_BYTES;
  // unmap_mapping_range(): holelen 0 means "to the end of the file" (unmap_mapping_pages' last_index wraps).
  return start < lo + BAR_REGION_BYTES && (length === 0 || start + length > lo);
}

/** LEGACY and CUSTOM_VM_OPS mappings live in the vdev inode's address space: only a DEVICE zap reaches them. */
export function isDeviceMapping(m: Mapping): boolean {
  return m.backing !== Backing.DMABUF;
}

/** Live mappings tracked per device. Every zap, revoke and acquire walks the list, so a host that sent mmaps without
 * munmaps would make each of them cost more (quadratic in its events); past this many the list is dropped and unknown,
 * as after loss (a vfio-pci device has 6 BARs; a VMM maps each once or a few times). */
export const MAX_MAPPINGS = 1024;

export class MappingState {
  /** Known once DeviceInfo or a snapshot was seen for the device (and no loss since). */
  known = false;
  /** The list was dropped for growing past MAX_MAPPINGS (cleared when the list starts over after loss). */
  overflowed = false;
  private live: Map<number, Mapping> | null = null;
  /** Live mappings by kind, kept as the list changes (every acquire reads them). */
  deviceCount = 0;
  dmabufCount = 0;

  private counted(m: Mapping, by: number): void {
    if (isDeviceMapping(m)) this.deviceCount += by; else this.dmabufCount += by;
  }

  /** Loss: the list may have missed mmaps and munmaps; it starts over, unknown. */
  forget(): void {
    this.live = null;
    this.known = false;
    this.overflowed = false;
    this.deviceCount = 0;
    this.dmabufCount = 0;
  }

  /** vfio_pci_core_close_device(): runs once the last reference to the device file is gone, so no mapping of the
   * device fd (LEGACY, CUSTOM_VM_OPS) is left. */
  closeDeviceFd(): void {
    if (!this.live) return;
    for (const [id, m] of this.live) if (isDeviceMapping(m)) this.live.delete(id);
    this.deviceCount = 0;
  }

  add(id: number, m: Mapping): void {
    const live = (this.live ??= new Map());
    if (live.size >= MAX_MAPPINGS && !live.has(id)) {
      live.clear(); this.known = false; this.overflowed = true; this.deviceCount = 0; this.dmabufCount = 0;
    }
    const old = live.get(id);
    if (old) this.counted(old, -1);
    live.set(id, m);
    this.counted(m, 1);
  }

  remove(id: number): void {
    const m = this.live?.get(id);
    if (!m) return;
    this.live!.delete(id);
    this.counted(m, -1);
  }

  toState(): { known: boolean; overflowed: boolean; live: [number, Mapping][] } {
    return { known: this.known, overflowed: this.overflowed, live: this.live ? [...this.live].map(([id, m]) => [id, { ...m }]) : [] };
  }

  static fromState(s: { known: boolean; overflowed?: boolean; live: [number, Mapping][] }): MappingState {
    const m = new MappingState();
    m.known = s.known;
    m.overflowed = s.overflowed ?? false;
    for (const [id, x] of s.live) m.add(id, { ...x });
    return m;
  }

  get(id: number): Mapping | undefined {
    return this.live?.get(id);
  }

  /** A DEVICE zap (unmap_mapping_range on vdev->vdev.inode->i_mapping) tears down the PTEs it covers. */
  zapDevice(start: number, length: number): void {
    if (!this.live) return;
    for (const m of this.live.values()) {
      if (m.populated && isDeviceMapping(m) && zapReachesBar(start, length, m.bar)) m.populated = false;
    }
  }

  /** vfio_pci_dma_buf_move(vdev, revoked): every DMABUF of the device ends in that state; a revoke tears down the
   * PTEs of every DMABUF-backed mapping. */
  moveDmabufs(revoked: boolean): void {
    if (!this.live) return;
    for (const m of this.live.values()) {
      if (m.backing !== Backing.DMABUF) continue;
      m.revoked = revoked; m.revokedKnown = true;
      if (revoked) m.populated = false;
    }
  }

  /** Live non-DMABUF mappings (what a DEVICE zap must reach). */
  deviceMappings(): [number, Mapping][] {
    const out: [number, Mapping][] = [];
    if (this.live) for (const e of this.live) if (isDeviceMapping(e[1])) out.push(e);
    return out;
  }

  hasDeviceMapping(): boolean {
    return this.deviceCount > 0;
  }

  /** A live non-DMABUF mapping on a BAR outside `bars` (bits 0..5), populated if `populatedOnly`: deviceMappings()
   * filtered so, without building the list (every revoke asks; almost always none). */
  hasUncovered(bars: number, populatedOnly: boolean): boolean {
    if (this.deviceCount > 0 && this.live) {
      for (const m of this.live.values()) {
        if (isDeviceMapping(m) && ((bars >> m.bar) & 1) === 0 && (m.populated || !populatedOnly)) return true;
      }
    }
    return false;
  }

  /** A live non-DMABUF mapping with populated PTEs. */
  hasPopulatedDeviceMapping(): boolean {
    if (this.live) for (const m of this.live.values()) if (m.populated && isDeviceMapping(m)) return true;
    return false;
  }

  /** Live mappings of the device fd (what a DEVICE zap must reach) and DMABUF-backed ones, by walking the list (tests
   * hold deviceCount and dmabufCount to it). */
  count(): { device: number; dmabuf: number } {
    let device = 0, dmabuf = 0;
    if (this.live) for (const m of this.live.values()) if (isDeviceMapping(m)) device++; else dmabuf++;
    return { device, dmabuf };
  }
}
