// Who and which code path on the collector side (issue 17): ftrace's `<stack trace>` entries and bpftrace's kstack
// lines attached to their hits, stack ids deduplicated per boot, the cgroup ids of tasks read from a cgroup2 tree
// (a real directory tree here: ids are its directories' inode numbers) and /proc, and a raw capture replayed with
// its stacks and cgroup table as the live agent sent them.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BpftraceReader } from '../collectors/bpftrace/parse.js';
import { bpftraceScript } from '../collectors/bpftrace/script.js';
import { CgroupTable, cgroup2Mount, procCgroupPath } from '../collectors/agent/cgroups.js';
import { Decoder, stackIdOf } from '../collectors/agent/decoder.js';
import type { ProbeHit } from '../collectors/probes/hit.js';
import { replayRaw } from '../collectors/agent/replay.js';
import { TraceReader } from '../collectors/ftrace/parse.js';
import { stackTrigger } from '../collectors/ftrace/render.js';
import { makePlan, takesStack } from '../collectors/probes/plan.js';
import { readKernelFacts } from '../collectors/probes/kernel.js';
import type { Event, EventBatch } from '../services/core/model.js';
import { runAgent } from '../collectors/agent/agent.js';
import { checkLab, parseLedger } from './kernel-lab/expect.js';

const FIX = join(import.meta.dirname, 'fixtures/kernel/6.12');

describe('ftrace: the stacktrace trigger\'s entries', () => {
  // as trace_pipe prints them (kernel/trace/trace_output.c): the hit, then its stack entry on the same CPU; another
  // CPU's hit may come between them in the merged pipe
  const LINES = [
    '        workload-435     (    435) [000] .....    43.631148: zap: (unmap_mapping_range+0x4/0x140) mapping=0xff3f111081539c98 start=0x0 len=0x60000000000',
    '          <idle>-0       (      0) [001] .....    43.631150: unlock: (up_write+0x4/0x50) sem=0xff3f1110827c1540 caller=0xffffffffc04acc52',
    '        workload-435     (    435) [000] .....    43.631151: <stack trace>',
    // the kprobe's own dispatch (as Debian 6.12 prints it): not the probed path, dropped
    ' => kprobe_trace_func', ' => kprobe_dispatcher', ' => kprobe_int3_handler', ' => exc_int3', ' => asm_exc_int3',
    ' => unmap_mapping_range',
    ' => vfio_pci_zap_and_down_write_memory_lock',
    ' => vfio_basic_config_write',
    ' => vfio_config_do_rw',
    ' => vfs_write',
    '        workload-435     (    435) [000] .....    43.631360: zap_ret: (vfio_basic_config_write+0x27b/0x350 [vfio_pci_core] <- unmap_mapping_range)',
    // a stack-taking probe's hit whose stack entry never came (ring full, trigger refused): it goes on without one
    '        workload-435     (    435) [000] .....    43.640000: zap: (unmap_mapping_range+0x4/0x140) mapping=0xff3f111081539c98 start=0x0 len=0x60000000000',
    '        workload-435     (    435) [000] .....    43.640200: zap_ret: (vfio_basic_config_write+0x27b/0x350 [vfio_pci_core] <- unmap_mapping_range)',
  ];

  it('attaches each stack to its hit, innermost frame first; other hits go on in order', () => {
    const r = new TraceReader(new Set(['zap']));
    const out: ProbeHit[] = [];
    for (const l of LINES) r.line(l, (h) => out.push(h));
    r.flush((h) => out.push(h));
    expect(out.map((h) => [h.probe, h.stack?.length ?? 0])).toEqual([['unlock', 0], ['zap', 5], ['zap_ret', 0], ['zap', 0], ['zap_ret', 0]]);
    expect(out[1]!.stack).toEqual(['unmap_mapping_range', 'vfio_pci_zap_and_down_write_memory_lock', 'vfio_basic_config_write', 'vfio_config_do_rw', 'vfs_write']);
  });

  it('without stack probes a stack entry is ignored and nothing waits', () => {
    const out: string[] = [];
    const r = new TraceReader();
    for (const l of LINES) r.line(l, (h) => out.push(h.probe));
    expect(out).toEqual(['zap', 'unlock', 'zap_ret', 'zap', 'zap_ret']);
  });
});

describe('bpftrace: cg= and kstack lines', () => {
  it('reads the cgroup id and the frames printed after the hit', () => {
    const r = new BpftraceReader();
    const hits: ProbeHit[] = [];
    // printf("RS ... cg=0x%llx |%s\n%s\n", ..., cgroup, comm, kstack): kstack is a blank line and one indented frame a line
    for (const l of ['RS zap 105114399997 1 900 900 mapping=0xff3da846c2346540 start=0x0 len=0x60000000000 cg=0x1f4 |qemu-system-x86',
      '', '        unmap_mapping_range+0', '        vfio_pci_zap_bars+46', '        vfio_pci_ioctl_reset+149', '',
      'RS zap_ret 105114409997 1 900 900 cg=0x1f4 |qemu-system-x86', 'RS unlock 105114419997 0 901 900 sem=0x1 cg=0x0 |qemu-system-x86']) {
      const h = r.line(l);
      if (h) hits.push(h);
    }
    expect(hits.map((h) => [h.probe, h.cgroupId, h.stack])).toEqual([
      ['zap', 500, ['unmap_mapping_range+0', 'vfio_pci_zap_bars+46', 'vfio_pci_ioctl_reset+149']],
      ['zap_ret', 500, undefined],
      ['unlock', undefined, undefined],   // cgroup 0: not read
    ]);
    expect(hits[0]!.args.cg).toBeUndefined();
  });

  it('the program prints cgroup on every probe and kstack on the revoke steps\' only with stacks', () => {
    const facts = readKernelFacts({ kallsyms: join(FIX, 'kallsyms.txt'), release: '6.12.117+deb12-amd64', btfRoot: '/nonexistent' });
    const plan = makePlan(facts);
    const plain = bpftraceScript(plan, plan.attach, 1);
    const withStacks = bpftraceScript(plan, plan.attach, 1, true);
    expect(plain).not.toContain('kstack');
    expect(plain.match(/cg=0x%llx/g)?.length).toBe(plan.attach.length);
    const stackProbes = plan.attach.filter(takesStack).map((p) => p.spec.id);
    expect(stackProbes).toEqual(expect.arrayContaining(['lock', 'zap']));
    expect(withStacks.match(/, kstack\)/g)?.length).toBe(stackProbes.length);
    // ftrace: the trigger carries the event's filter (an unconditional trigger would fire before the filter)
    const zap = plan.attach.find((p) => p.spec.id === 'zap')!;
    expect(stackTrigger(zap)).toMatch(/^stacktrace if start == 0x0 && len == 0x60000000000$/);
  });
});

describe('decoder: stack ids', () => {
  it('names each distinct stack once per boot and puts its id on the event the hit made', () => {
    const events: Event[] = [];
    const d = new Decoder((e) => events.push(e), { knownDevice: () => true });
    const stack = ['down_write', 'vfio_pci_core_ioctl', '__x64_sys_ioctl'];
    const hit = (probe: string, ts: number, extra: Partial<ProbeHit> = {}): ProbeHit =>
      ({ probe, tsNs: ts, cpu: 0, tid: 7, pid: 7, comm: 'qemu', args: { dev: '0000:3b:00.0' }, ...extra });
    d.hit(hit('lock', 100, { stack, cgroupId: 42 }));
    d.hit(hit('lock_ret', 200));
    d.hit(hit('unlock', 300));
    d.hit(hit('lock', 400, { stack: [...stack] }));
    d.hit(hit('lock_ret', 500));
    const acquires = events.filter((e) => e.lockAcquire);
    expect(acquires.map((e) => e.stackId)).toEqual([stackIdOf(stack), stackIdOf(stack)]);
    expect(events.find((e) => e.lockRelease)!.stackId).toBeUndefined();
    expect(d.takeStacks()).toEqual([{ id: stackIdOf(stack), frames: stack }]);
    expect(d.takeStacks()).toEqual([]);
    expect(stackIdOf(['a'])).not.toBe(stackIdOf(['b']));
  });
});

describe('cgroups: ids from a cgroup2 tree and /proc', () => {
  const root = mkdtempSync(join(tmpdir(), 'rs-cg-'));
  const cg = join(root, 'cgroup'), proc = join(root, 'proc'), pods = join(root, 'pods');
  const UID = '1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d';
  const vmPath = '/machine.slice/machine-qemu\\x2d1\\x2dvm1.scope/libvirt/vcpu0';
  const podPath = `/kubepods.slice/kubepods-pod${UID.replace(/-/g, '_')}.slice/cri-containerd-${'cd'.repeat(32)}.scope`;
  for (const p of [vmPath, podPath, '/system.slice/other.service']) mkdirSync(cg + p, { recursive: true });
  const task = (pid: number, tid: number, path: string) => {
    mkdirSync(join(proc, String(pid), 'task', String(tid)), { recursive: true });
    writeFileSync(join(proc, String(pid), 'task', String(tid), 'cgroup'), `0::${path}\n`);
  };
  task(10, 11, vmPath);
  task(20, 20, podPath);
  mkdirSync(join(pods, `net_dpdk-0_${UID}`), { recursive: true });
  const ino = (p: string) => Number(statSync(cg + p).ino);

  it('reads a task\'s cgroup, queues each entry once with the pod\'s name; a gone task keeps its id', () => {
    const entries: unknown[] = [];
    const t = new CgroupTable({ root: cg, proc, podLogs: pods, onEntry: (c) => entries.push(c) });
    expect(t.ofTask(10, 11)).toBe(ino(vmPath));
    expect(t.ofTask(20, 20)).toBe(ino(podPath));
    expect(t.ofTask(30, 31)).toBe(0);              // no such task: unknown, not a guess
    t.note(ino(vmPath), 10, 11); t.note(ino(vmPath), 10, 11); t.note(ino(podPath), 20, 20);
    expect(t.take()).toEqual([{ id: ino(vmPath), path: vmPath }, { id: ino(podPath), path: podPath, podName: 'net/dpdk-0' }]);
    expect(t.take()).toEqual([]);
    expect(entries).toHaveLength(2);
  });

  it('reads every task of a process at once (the agent\'s start)', () => {
    const t = new CgroupTable({ root: cg, proc, podLogs: pods });
    t.ofProcess(10);
    rmSync(join(proc, '10'), { recursive: true });   // the process exits before its hits are read
    expect(t.ofTask(10, 11)).toBe(ino(vmPath));
    task(10, 11, vmPath);
  });

  it('finds the path of an id the kernel gave (bpftrace) by walking the tree', () => {
    const t = new CgroupTable({ root: cg, proc, podLogs: pods });
    t.note(ino('/system.slice/other.service'));
    expect(t.take()).toEqual([{ id: ino('/system.slice/other.service'), path: '/system.slice/other.service' }]);
  });

  it('the agent sends each cgroup and stack once, in the batch of the first event that names it', async () => {
    const facts = readKernelFacts({ kallsyms: join(FIX, 'kallsyms.txt'), release: '6.12.117+deb12-amd64', btfRoot: '/nonexistent' });
    const plan = makePlan(facts);
    const dev = '0000:01:00.0';
    const lockStack = ['vfio_pci_core_ioctl', '__x64_sys_ioctl'], zapStack = ['vfio_pci_zap_bars', 'vfio_pci_core_ioctl', '__x64_sys_ioctl'];
    // bpftrace-style hits (the kernel gave the cgroup id): two resets by a VM's vCPU thread, 300 ms apart
    const reset = (t: number): ProbeHit[] => [
      { probe: 'lock', tsNs: t, cpu: 0, tid: 11, pid: 10, comm: 'qemu', args: { sem: 0x100n, dev }, cgroupId: ino(vmPath), stack: [...lockStack] },
      { probe: 'lock_ret', tsNs: t + 10, cpu: 0, tid: 11, pid: 10, comm: 'qemu', args: {}, cgroupId: ino(vmPath) },
      { probe: 'zap', tsNs: t + 20, cpu: 0, tid: 11, pid: 10, comm: 'qemu', args: { mapping: 0x200n, start: 0n, len: 6n << 40n }, cgroupId: ino(vmPath), stack: [...zapStack] },
      { probe: 'zap_ret', tsNs: t + 30, cpu: 0, tid: 11, pid: 10, comm: 'qemu', args: {}, cgroupId: ino(vmPath) },
      { probe: 'unlock', tsNs: t + 40, cpu: 0, tid: 11, pid: 10, comm: 'qemu', args: { sem: 0x100n, dev }, cgroupId: ino(vmPath) },
    ];
    const queue = [reset(1000)];
    const backend = { attach: async () => ({ attached: plan.attach.filter((p) => p.spec.role !== 'snapshot'), failed: [] }),
      poll: (f: (h: ProbeHit) => void) => { const hs = queue.shift() ?? []; hs.forEach(f); return hs.length; }, lost: () => 0, detach: async () => {} };
    setTimeout(() => queue.push(reset(2000)), 300);
    const batches: EventBatch[] = [];
    await runAgent({ backend: 'bpftrace', facts, plan, backendInstance: backend, devices: [{ address: dev, driver: 'vfio-pci' }],
      cgroups: new CgroupTable({ root: cg, proc, podLogs: pods }), stacks: true,
      sink: { write: async (b) => { batches.push(b); }, close: async () => {} }, durationMs: 800, flushMs: 50, pollMs: 20, log: () => {} });
    const withEvents = batches.filter((b) => b.events?.some((e) => e.lockAcquire));
    expect(withEvents.length).toBeGreaterThanOrEqual(2);
    expect(withEvents[0]!.cgroups).toEqual([{ id: ino(vmPath), path: vmPath }]);
    expect(withEvents[0]!.stacks).toEqual([{ id: stackIdOf(lockStack), frames: lockStack }, { id: stackIdOf(zapStack), frames: zapStack }]);
    expect(batches.flatMap((b) => b.cgroups ?? [])).toHaveLength(1);
    expect(batches.flatMap((b) => b.stacks ?? [])).toHaveLength(2);
    const events = batches.flatMap((b) => b.events ?? []);
    expect(events.filter((e) => e.lockAcquire).map((e) => [e.cgroupId, e.stackId])).toEqual([[ino(vmPath), stackIdOf(lockStack)], [ino(vmPath), stackIdOf(lockStack)]]);
    expect(events.filter((e) => e.zap).map((e) => e.stackId)).toEqual([stackIdOf(zapStack), stackIdOf(zapStack)]);
  });

  it('no cgroup2 mount: no ids', () => {
    const t = new CgroupTable({ proc: join(root, 'none') });
    expect(t.root).toBeUndefined();
    expect(t.ofTask(10, 11)).toBe(0);
  });

  it('parses mountinfo and /proc/<pid>/cgroup', () => {
    expect(cgroup2Mount('24 30 0:22 / /sys rw - sysfs sysfs rw\n36 24 0:31 / /sys/fs/cgroup rw,nosuid shared:9 - cgroup2 cgroup2 rw,nsdelegate\n'))
      .toBe('/sys/fs/cgroup');
    expect(cgroup2Mount('36 24 0:31 / /mnt/my\\040cg rw - cgroup2 none rw\n')).toBe('/mnt/my cg');
    expect(cgroup2Mount('36 24 0:31 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n')).toBeUndefined();
    expect(procCgroupPath('12:memory:/user.slice\n0::/user.slice/user-0.slice/session-1.scope\n')).toBe('/user.slice/user-0.slice/session-1.scope');
    expect(procCgroupPath('0::/\n')).toBe('/');
    expect(procCgroupPath('1:name=systemd:/\n')).toBeUndefined();
    // outside the agent's cgroup namespace: not followed (it would name another directory)
    expect(procCgroupPath('0::/../../kubepods.slice/kubepods-pod1.slice\n')).toBeUndefined();
  });
});

describe('replay of a raw capture with stacks and cgroups', () => {
  it('events name the stacks and cgroups the agent recorded; the batch carries both tables', () => {
    // the 6.12 lab capture with stack entries after each lock and zap hit, as the trigger writes them
    const text = readFileSync(join(FIX, 'raw-ftrace.txt'), 'utf8').split('\n');
    const out = [`${text[0]} stacks=lock,zap`, '# cgroup 1 /', '# cgroup 77 /machine.slice/machine-qemu\\x2d1\\x2dlab.scope', '# cgroup-of 435 77'];
    for (const l of text.slice(1)) {
      out.push(l);
      const m = /^(\s*\S+-\d+\s+\(\s*\d+\)\s+\[\d+\]\s+\S+\s+[\d.]+): (lock|zap):/.exec(l);
      if (m) out.push(`${m[1]}: <stack trace>`, ` => ${m[2] === 'lock' ? 'down_write' : 'unmap_mapping_range'}`, ' => vfio_pci_core_ioctl');
    }
    const { batches, events } = replayRaw(out.join('\n'), { hostname: 'lab', bootId: 'b' });
    expect(batches[0]!.cgroups).toEqual([{ id: 1, path: '/' }, { id: 77, path: '/machine.slice/machine-qemu\\x2d1\\x2dlab.scope' }]);
    expect(batches[0]!.stacks!.map((s) => s.frames)).toEqual(expect.arrayContaining([['down_write', 'vfio_pci_core_ioctl'], ['unmap_mapping_range', 'vfio_pci_core_ioctl']]));
    const acquires = events.filter((e) => e.lockAcquire && e.tid === 435);
    expect(acquires.length).toBeGreaterThan(3);
    expect(acquires.every((e) => e.cgroupId === 77 && e.stackId === stackIdOf(['down_write', 'vfio_pci_core_ioctl']))).toBe(true);
    expect(events.filter((e) => e.zap).every((e) => e.stackId === stackIdOf(['unmap_mapping_range', 'vfio_pci_core_ioctl']))).toBe(true);
    // the replay without the stack entries decodes the same events, without stack ids
    const plain = replayRaw(text.join('\n'), { hostname: 'lab', bootId: 'b' }).events;
    expect(plain.map((e) => [e.tsNs, e.device])).toEqual(events.map((e) => [e.tsNs, e.device]));
  });
});

describe.each(['ftrace', 'bpftrace'] as const)('Debian 6.12 in the kernel lab: collect --stacks, the workload in a libvirt-style machine scope (%s)', (backend) => {
  // test/fixtures/kernel/6.12/raw-<backend>-field-who.txt: the field scenario's raw capture of
  // `STACKS=1 KERNEL=6.12 BACKENDS=<backend> run.sh` (guest.sh puts the workload in
  // /machine.slice/machine-qemu\x2d1\x2dlab\x2dvm.scope), replayed as the agent decoded it
  const load = () => {
    const { batches, events } = replayRaw(readFileSync(join(FIX, `raw-${backend}-field-who.txt`), 'utf8'), { hostname: 'lab', bootId: 'who' });
    const ledger = parseLedger(readFileSync(join(FIX, `ledger-${backend}-field-who.txt`), 'utf8'));
    return { batches, events, v: checkLab(batches, ledger) };
  };
  // bpftrace's kstack frames are symbol+offset, ftrace's symbol names
  const fn = (frame: string | undefined) => frame?.replace(/\+\d+$/, '');

  it('decodes as without stacks: one episode per workload operation', () => {
    expect(load().v.problems).toEqual([]);
  });

  it('episodes name the VM where the collector read the task\'s cgroup, and never another', () => {
    const { batches, v } = load();
    expect(batches[0]!.cgroups).toEqual(expect.arrayContaining([{ id: 1, path: '/' }, { id: 46, path: '/machine.slice/machine-qemu\\x2d1\\x2dlab\\x2dvm.scope' }]));
    const observed = v.perOp.flatMap((p) => p.episodes).filter((e) => e.comm === 'workload' && e.acquireTsNs > 0);
    const named = observed.filter((e) => e.cgroupId !== 0);
    if (backend === 'bpftrace') {
      // read in the kernel at the hit (bpf_get_current_cgroup_id()): every episode the workload took names the VM
      expect(observed.length).toBeGreaterThan(10);
      expect(named).toHaveLength(observed.length);
    } else {
      // the nvme loop-reset process was read while it ran; the short-lived processes that exited before the agent (8.8 s
      // behind in this guest) read their hits have no cgroup: ftrace reads it in user space (docs/identity-and-stacks.md)
      expect(named.length).toBeGreaterThanOrEqual(10);
    }
    expect(named.every((e) => e.cgroupId === 46 && e.vm === 'lab-vm')).toBe(true);
    expect(observed.filter((e) => e.cgroupId === 0).every((e) => e.vm === '')).toBe(true);
    // kernel workers (runtime PM) are in the root cgroup: no workload
    const workers = v.perOp.flatMap((p) => p.episodes).filter((e) => e.comm.startsWith('kworker'));
    expect(workers.every((e) => e.vm === '' && e.podUid === '')).toBe(true);
  });

  it('zaps and revoke acquires carry kernel stacks through vfio-pci-core, each stack sent once', () => {
    const { batches, events, v } = load();
    const stacks = new Map((batches[0]!.stacks ?? []).map((k) => [Number(k.id), k.frames ?? []]));
    expect(new Set((batches[0]!.stacks ?? []).map((k) => Number(k.id))).size).toBe(stacks.size);
    const zaps = events.filter((e) => e.zap && e.comm === 'workload');
    expect(zaps.length).toBeGreaterThan(10);
    for (const z of zaps) {
      const frames = stacks.get(Number(z.stackId))!;
      // the kprobe's own dispatch frames are dropped (ftrace) or never taken (bpftrace): the stack starts in the
      // function that holds the probed call
      expect(frames[0], `zap at ${z.tsNs}`).toMatch(/^vfio_/);
    }
    // the code paths: VFIO_DEVICE_RESET (the ioctl), PCI_COMMAND and PMCSR writes (pwrite on the config region)
    const paths = new Set(zaps.map((z) => stacks.get(Number(z.stackId))!.map(fn).join(' < ')));
    expect([...paths].sort()).toEqual([
      'vfio_pci_core_ioctl < vfio_device_fops_unl_ioctl < __x64_sys_ioctl < do_syscall_64 < entry_SYSCALL_64_after_hwframe',
      'vfio_pci_zap_and_down_write_memory_lock < vfio_basic_config_write < vfio_pci_config_rw < vfio_pci_rw < vfs_write < __x64_sys_pwrite64 < do_syscall_64 < entry_SYSCALL_64_after_hwframe',
      'vfio_pci_zap_and_down_write_memory_lock < vfio_pm_config_write < vfio_pci_config_rw < vfio_pci_rw < vfs_write < __x64_sys_pwrite64 < do_syscall_64 < entry_SYSCALL_64_after_hwframe',
    ]);
    const faults = events.filter((e) => e.barFault && e.stackId);
    expect(faults.length).toBeGreaterThan(0);
    expect(faults.every((e) => fn(stacks.get(Number(e.stackId))![0]) === 'vfio_pci_mmap_huge_fault')).toBe(true);
    const revokes = v.perOp.flatMap((p) => p.episodes).filter((e) => e.revoke && e.acquireTsNs > 0);
    expect(revokes.length).toBeGreaterThan(5);
    expect(revokes.every((e) => stacks.get(e.acquireStackId)?.[0]?.startsWith('vfio_'))).toBe(true);
  });
});
