// Workload identity from cgroup v2 paths (services/core/workload.ts): paths as libvirt, kubelet, containerd, CRI-O,
// docker and podman make them, with systemd's escapes.
import { describe, expect, it } from 'vitest';
import { podLogDirectory, unescapeSystemd, workloadOf, type Workload } from '../services/core/workload.js';

const CID = 'f3b1c0de' + '0123456789abcdef'.repeat(3) + '01234567';
const UID = '1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d';

const CASES: [string, Workload][] = [
  // libvirt + systemd (machined): the scope is machine-<escaped "qemu-<id>-<name>">.scope
  ['/machine.slice/machine-qemu\\x2d1\\x2dvm1.scope/libvirt/vcpu0', { vm: 'vm1' }],
  ['/machine.slice/machine-qemu\\x2d12\\x2dweb\\x2dfrontend\\x2d01.scope/libvirt/emulator', { vm: 'web-frontend-01' }],
  ['/machine.slice/machine-qemu\\x2d3\\x2dgpu.node\\x2d7.scope', { vm: 'gpu.node-7' }],
  // a name with a space and a non-ASCII character (systemd escapes both byte by byte)
  ['/machine.slice/machine-qemu\\x2d4\\x2dtest\\x20vm\\xc3\\xa9.scope/libvirt', { vm: 'test vmé' }],
  // libvirt before 2.0: no domain id
  ['/machine.slice/machine-qemu\\x2dlegacy.scope', { vm: 'legacy' }],
  ['/machine.slice/machine-lxc\\x2d5\\x2dct1.scope', { vm: 'ct1' }],
  // libvirt without systemd (cgroupfs)
  ['/machine/qemu-2-db01.libvirt-qemu/emulator', { vm: 'db01' }],
  ['/machine/db02.libvirt-qemu/vcpu1', { vm: 'db02' }],
  // podman containers live in machine.slice too: a container, not a VM
  [`/machine.slice/libpod-${CID}.scope/container`, { containerId: CID }],
  // Kubernetes, systemd cgroup driver (kubelet escapes the UID's dashes as _)
  [`/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${UID.replace(/-/g, '_')}.slice/cri-containerd-${CID}.scope`,
    { podUid: UID, containerId: CID }],
  [`/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod${UID.replace(/-/g, '_')}.slice/crio-${CID}.scope`,
    { podUid: UID, containerId: CID }],
  // guaranteed QoS: no QoS level
  [`/kubepods.slice/kubepods-pod${UID.replace(/-/g, '_')}.slice/cri-containerd-${CID}.scope`, { podUid: UID, containerId: CID }],
  // the pod's own slice (a task in the pod cgroup, e.g. the pause process with cgroupfs)
  [`/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${UID.replace(/-/g, '_')}.slice`, { podUid: UID }],
  // Kubernetes, cgroupfs driver
  [`/kubepods/burstable/pod${UID}/${CID}`, { podUid: UID, containerId: CID }],
  [`/kubepods/pod${UID}/${CID}`, { podUid: UID, containerId: CID }],
  // a VM that libvirt runs inside a pod's container (nested cgroups name both)
  [`/kubepods.slice/kubepods-pod${UID.replace(/-/g, '_')}.slice/cri-containerd-${CID}.scope/machine.slice/machine-qemu\\x2d1\\x2dkv1.scope/libvirt/emulator`,
    { podUid: UID, containerId: CID, vm: 'kv1' }],
  // docker
  [`/system.slice/docker-${CID}.scope`, { containerId: CID }],
  [`/docker/${CID}`, { containerId: CID }],
  // nothing to name: the root, services, user sessions, lookalikes
  ['/', {}],
  ['/system.slice/libvirtd.service', {}],
  ['/user.slice/user-1000.slice/session-3.scope', {}],
  ['/machine.slice', {}],
  ['/machine.slice/machine-foo.scope', {}],
  ['/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-podnotauid.slice', {}],
  [`/system.slice/${CID}`, {}],
  ['/system.slice/docker-abc.scope', {}],
];

describe('workloadOf: what a cgroup path names', () => {
  it.each(CASES)('%s', (path, want) => {
    expect(workloadOf(path)).toEqual(want);
  });
});

describe('unescapeSystemd', () => {
  it('turns \\xNN into the byte and leaves other text alone', () => {
    expect(unescapeSystemd('qemu\\x2d1\\x2dvm1')).toBe('qemu-1-vm1');
    expect(unescapeSystemd('a\\x5cb')).toBe('a\\b');
    expect(unescapeSystemd('no\\xZZescape\\x2')).toBe('no\\xZZescape\\x2');
  });
});

describe('podLogDirectory: kubelet\'s /var/log/pods/<namespace>_<name>_<uid>', () => {
  it('names the pod', () => {
    expect(podLogDirectory(`kube-system_coredns-7db6d8ff4d-x2v9k_${UID}`)).toEqual({ uid: UID, name: 'kube-system/coredns-7db6d8ff4d-x2v9k' });
    expect(podLogDirectory(`ml_trainer-0_${UID}`)).toEqual({ uid: UID, name: 'ml/trainer-0' });
  });
  it('ignores anything else', () => {
    expect(podLogDirectory('README')).toBeUndefined();
    expect(podLogDirectory(`ns_name_${UID.slice(0, 30)}`)).toBeUndefined();
  });
});
