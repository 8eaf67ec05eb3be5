// Workload identity from a cgroup v2 path (issue 17, "who"): which VM, pod or container a task belongs to, read from
// the names the managers give their cgroups. Pure: a path in, names out; a path that names none gives none (never a
// guess). The conventions:
// - libvirt with systemd (machined): /machine.slice/machine-qemu\x2d<id>\x2d<name>.scope/... (the scope is
//   "machine-" + the systemd-escaped machine name "qemu-<id>-<name>", libvirt's virDomainDriverGenerateMachineName);
//   libvirt before 2.0 named it machine-qemu\x2d<name>.scope; without systemd (cgroupfs) /machine/qemu-<id>-<name>.libvirt-qemu/...
//   and /machine/<name>.libvirt-qemu/... . LXC domains the same with "lxc".
// - Kubernetes (kubelet's cgroup names, pkg/kubelet/cm): systemd driver /kubepods.slice/kubepods-<qos>.slice/
//   kubepods-<qos>-pod<UID with _ for ->.slice/<container scope>; cgroupfs driver /kubepods/<qos>/pod<UID>/<container id>;
//   guaranteed pods have no QoS level.
// - container scopes: cri-containerd-<id>.scope, crio-<id>.scope, docker-<id>.scope, libpod-<id>.scope (podman);
//   cgroupfs: /docker/<id>, and the last component of a kubepods pod directory.

export interface Workload {
  /** libvirt domain name. */
  vm?: string;
  /** Kubernetes pod UID (with dashes, as the API shows it). */
  podUid?: string;
  /** Container id (64 hex digits as the runtime prints it). */
  containerId?: string;
}

const utf8 = new TextEncoder();

/** systemd's unit name unescaping (systemd-escape --unescape): "\xNN" is the byte NN. */
export function unescapeSystemd(s: string): string {
  if (!s.includes('\\x')) return s;
  const bytes: number[] = [];
  for (let i = 0; i < s.length; i++) {
    if (s[i] === '\\' && s[i + 1] === 'x' && /^[0-9a-fA-F]{2}$/.test(s.slice(i + 2, i + 4))) {
      bytes.push(parseInt(s.slice(i + 2, i + 4), 16));
      i += 3;
    } else bytes.push(...utf8.encode(s[i]!));
  }
  return new TextDecoder().decode(new Uint8Array(bytes));
}

const UID = /^[0-9a-f]{8}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{12}$/;
const CONTAINER_ID = /^[0-9a-f]{64}$/;
/** A machine name "qemu-<id>-<name>" (libvirt 2.0+) or "qemu-<name>" (older): the domain name. */
function domainOf(machine: string): string | undefined {
  const m = /^(?:qemu|lxc)-(.+)$/.exec(machine);
  if (!m) return undefined;
  const rest = m[1]!;
  const withId = /^\d+-(.+)$/.exec(rest);
  return withId ? withId[1] : rest;
}

/** What a cgroup v2 path (as /proc/<pid>/cgroup's "0::" line gives it) names. */
export function workloadOf(path: string): Workload {
  const out: Workload = {};
  const parts = path.split('/').filter(Boolean);
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i]!;
    // libvirt, systemd: machine.slice/machine-<escaped machine name>.scope
    if (out.vm === undefined && parts[i - 1] === 'machine.slice' && p.startsWith('machine-') && p.endsWith('.scope')) {
      const vm = domainOf(unescapeSystemd(p.slice('machine-'.length, -'.scope'.length)));
      if (vm) { out.vm = vm; continue; }
    }
    // libvirt, cgroupfs: machine/<machine name>.libvirt-qemu (or .libvirt-lxc)
    if (out.vm === undefined && parts[i - 1] === 'machine') {
      const m = /^(.+)\.libvirt-(?:qemu|lxc)$/.exec(p);
      if (m) { out.vm = /^(?:qemu|lxc)-\d+-(.+)$/.exec(m[1]!)?.[1] ?? m[1]; continue; }
    }
    // Kubernetes, systemd driver: kubepods[-<qos>]-pod<uid>.slice
    const slice = /^kubepods(?:-[a-z]+)?-pod(.+)\.slice$/.exec(p);
    if (slice && parts[0] === 'kubepods.slice' && UID.test(slice[1]!)) { out.podUid = slice[1]!.replace(/_/g, '-'); continue; }
    // Kubernetes, cgroupfs driver: kubepods/[<qos>/]pod<uid>
    if (parts[0] === 'kubepods' && p.startsWith('pod') && UID.test(p.slice(3))) { out.podUid = p.slice(3); continue; }
    // containers
    const scope = /^(?:cri-containerd|crio|docker|libpod)-([0-9a-f]{64})\.scope$/.exec(p);
    if (scope) { out.containerId = scope[1]; continue; }
    if (CONTAINER_ID.test(p) && (out.podUid !== undefined || parts[i - 1] === 'docker')) out.containerId = p;
  }
  return out;
}

/** kubelet's pod log directory "<namespace>_<name>_<uid>" (/var/log/pods): the pod's "namespace/name" by UID. */
export function podLogDirectory(dir: string): { uid: string; name: string } | undefined {
  const m = /^([a-z0-9-]+)_([a-z0-9.-]+)_([0-9a-f-]{36})$/.exec(dir);
  return m ? { uid: m[3]!, name: `${m[1]!}/${m[2]!}` } : undefined;
}
