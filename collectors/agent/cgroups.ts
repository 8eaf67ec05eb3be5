// Workload identity on the host (issue 17): which cgroup v2 a task is in, and the boot's table of cgroup ids to paths
// that the agent sends once per id (EventBatch.cgroups). A cgroup's id is its directory's inode number in the cgroup2
// file system (kernfs: the id bpf_get_current_cgroup_id() and bpftrace's `cgroup` return). bpftrace gives the id in
// the kernel; for ftrace hits the agent reads /proc/<pid>/task/<tid>/cgroup ("0::<path>") and stats the directory.
// Nothing is guessed: a task that is gone, a path that no longer exists or a host without cgroup2 gives no id (0).
// Paths are as the agent's cgroup namespace shows them: run it in the host's (a DaemonSet: hostPID and the host's
// cgroup namespace, /sys/fs/cgroup mounted).
import { readdirSync, readFileSync, statSync } from 'node:fs';
import type { Cgroup } from '../../services/core/model.js';
import { podLogDirectory, workloadOf } from '../../services/core/workload.js';

/** The cgroup2 mount point from a mountinfo text (/proc/self/mountinfo): "... <mount point> <options> ... - cgroup2 ...". */
export function cgroup2Mount(mountinfo: string): string | undefined {
  for (const line of mountinfo.split('\n')) {
    const sep = line.indexOf(' - ');
    if (sep < 0 || !line.slice(sep + 3).startsWith('cgroup2 ')) continue;
    const point = line.slice(0, sep).split(' ')[4];
    // mountinfo escapes space, tab, newline and backslash as \ooo
    if (point) return point.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));
  }
  return undefined;
}

/** The cgroup v2 path in a /proc/<pid>/cgroup text: its "0::<path>" line (cgroup v1 hierarchies are other lines).
 * A path outside the reader's cgroup namespace ("/../../kubepods.slice/…": the agent in a namespace of its own) is
 * not followed: it would resolve to some other directory. */
export function procCgroupPath(text: string): string | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith('0::')) continue;
    const path = line.slice(3) || '/';
    return path.split('/').includes('..') ? undefined : path;
  }
  return undefined;
}

export interface CgroupTableOptions {
  /** The cgroup2 mount point (default: from /proc/self/mountinfo; none: no ids). */
  root?: string;
  proc?: string;
  /** kubelet's pod log directories (<namespace>_<name>_<uid>): pod names by UID. Default /var/log/pods. */
  podLogs?: string;
  /** Monotonic ms (tests). */
  now?: () => number;
  /** Told every cgroup entry queued, and every tid resolved for an ftrace hit (the raw capture keeps both for replay). */
  onEntry?: (c: Cgroup) => void;
  onTask?: (tid: number, id: number) => void;
}

const TASK_TTL_MS = 10_000;   // a task rarely moves; a reused tid is re-read after this
const WALK_EVERY_MS = 5_000;  // an id the kernel gave whose path is unknown: the tree is walked at most this often
const WALK_LIMIT = 100_000;

export class CgroupTable {
  readonly root: string | undefined;
  private readonly proc: string;
  private readonly now: () => number;
  private readonly byTask = new Map<number, { id: number; at: number }>();
  private readonly paths = new Map<number, string>();
  private readonly sent = new Set<number>();
  private pending: Cgroup[] = [];
  private walkedAt = -Infinity;
  private pods: { at: number; byUid: Map<string, string> } | undefined;

  constructor(private readonly o: CgroupTableOptions = {}) {
    this.proc = o.proc ?? '/proc';
    this.now = o.now ?? (() => performance.now());
    let root = o.root;
    if (root === undefined) { try { root = cgroup2Mount(readFileSync(`${this.proc}/self/mountinfo`, 'utf8')); } catch { root = undefined; } }
    this.root = root;
  }

  /** The id of a cgroup path (its directory's inode), remembered; undefined when it does not exist (any more). */
  private idOfPath(path: string): number | undefined {
    if (this.root === undefined) return undefined;
    try {
      const id = Number(statSync(this.root + (path === '/' ? '' : path)).ino);
      this.paths.set(id, path);
      return id;
    } catch { return undefined; }
  }

  private pathOfTask(pid: number, tid: number): string | undefined {
    for (const f of [`${this.proc}/${pid}/task/${tid}/cgroup`, `${this.proc}/${tid}/cgroup`]) {
      try { return procCgroupPath(readFileSync(f, 'utf8')); } catch { /* gone, or not a thread of pid */ }
    }
    return undefined;
  }

  /** The cgroup id of a task (ftrace: the kernel gave none): read once per tid and TASK_TTL_MS; 0 = unknown. */
  ofTask(pid: number, tid: number): number {
    if (this.root === undefined || !tid) return 0;
    const now = this.now();
    const known = this.byTask.get(tid);
    if (known && now - known.at < TASK_TTL_MS) return known.id;
    const path = this.pathOfTask(pid, tid);
    const id = path === undefined ? 0 : this.idOfPath(path) ?? 0;
    // a task that is gone keeps the id it had (its last events are read after it exited); an unknown one is retried
    if (id) { this.byTask.set(tid, { id, at: now }); this.o.onTask?.(tid, id); }
    return id || known?.id || 0;
  }

  /** Every task of a process, read now (the agent's start: processes that already use vfio devices, whose hits may be
   * read only after they exited). */
  ofProcess(pid: number): void {
    if (this.root === undefined) return;
    let tids: string[] = [];
    try { tids = readdirSync(`${this.proc}/${pid}/task`); } catch { return; }
    for (const t of tids) if (/^\d+$/.test(t)) this.ofTask(pid, Number(t));
  }

  /** An event names cgroup `id` (of task pid/tid): its table entry is queued once, with the pod's name if readable. */
  note(id: number, pid?: number, tid?: number): void {
    if (!id || this.sent.has(id)) return;
    let path = this.paths.get(id);
    if (path === undefined && tid) {
      const p = this.pathOfTask(pid ?? tid, tid);
      if (p !== undefined && this.idOfPath(p) === id) path = p;
    }
    if (path === undefined) path = this.walk(id);
    if (path === undefined) return;   // asked again with the next event that names it
    this.sent.add(id);
    const c: Cgroup = { id, path };
    const podName = this.podName(path);
    if (podName) c.podName = podName;
    this.pending.push(c);
    this.o.onEntry?.(c);
  }

  /** Entries queued since the last call (the next batch's EventBatch.cgroups). */
  take(): Cgroup[] {
    const out = this.pending;
    this.pending = [];
    return out;
  }

  /** Every directory of the cgroup2 tree by inode, at most every WALK_EVERY_MS: the path of an id the kernel gave. */
  private walk(id: number): string | undefined {
    const now = this.now();
    if (this.root === undefined || now - this.walkedAt < WALK_EVERY_MS) return undefined;
    this.walkedAt = now;
    const stack = ['/'];
    let seen = 0;
    while (stack.length && seen++ < WALK_LIMIT) {
      const p = stack.pop()!;
      this.idOfPath(p);
      let names: string[] = [];
      try { names = readdirSync(this.root + (p === '/' ? '' : p), { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name); } catch { continue; }
      for (const n of names) stack.push(`${p === '/' ? '' : p}/${n}`);
    }
    return this.paths.get(id);
  }

  /** "namespace/name" of the pod a path names, from kubelet's /var/log/pods (re-listed at most every 30 s). */
  private podName(path: string): string | undefined {
    const uid = workloadOf(path).podUid;
    if (!uid) return undefined;
    const now = this.now();
    if (!this.pods || (!this.pods.byUid.has(uid) && now - this.pods.at > 30_000)) {
      const byUid = new Map<string, string>();
      try {
        for (const d of readdirSync(this.o.podLogs ?? '/var/log/pods')) { const p = podLogDirectory(d); if (p) byUid.set(p.uid, p.name); }
      } catch { /* not readable here: no pod names */ }
      this.pods = { at: now, byUid };
    }
    return this.pods.byUid.get(uid);
  }
}
