// ftrace backend: kprobe/kretprobe events through tracefs, enabled in a private trace instance with
// in-kernel filters, read from that instance's trace_pipe (non-blocking). Our probes live in one group
// and one instance, so a crashed earlier run is cleaned up at start and everything is removed on stop.
import { appendFileSync, closeSync, existsSync, openSync, readFileSync, readSync, readdirSync, rmdirSync, mkdirSync, writeFileSync, constants } from 'node:fs';
import type { Plan, PlannedProbe } from '../probes/plan.js';
import type { ProbeHit } from '../probes/hit.js';
import { GROUP, eventFilter, kprobeDefinition, selfOnly, stackTrigger } from './render.js';
import { TraceReader } from './parse.js';
import { takesStack } from '../probes/plan.js';

export interface AttachResult { attached: PlannedProbe[]; failed: { probe: PlannedProbe; error: string }[] }

const write = (path: string, text: string) => writeFileSync(path, text);

const INSTANCES = [GROUP, `${GROUP}-self`];

/** The kernel's reason for the last rejected definition (tracefs error_log, 4.20+), for the attach report. */
function lastError(root: string): string {
  try {
    const lines = readFileSync(`${root}/error_log`, 'utf8').trim().split('\n').filter((l) => l.trim());
    return lines.length ? ` (${lines.slice(-3).map((l) => l.trim()).join(' | ')})` : '';
  } catch { return ''; }
}

/** Remove our instances and every kprobe event of our group (left behind by a crash). */
export function cleanupStale(root: string): number {
  let removed = 0;
  for (const name of INSTANCES) {
    const inst = `${root}/instances/${name}`;
    if (!existsSync(inst)) continue;
    try { write(`${inst}/events/${GROUP}/enable`, '0'); } catch { /* group may not exist */ }
    try { rmdirSync(inst); } catch { /* retried below after probes are gone */ }
  }
  try { write(`${root}/events/${GROUP}/enable`, '0'); } catch { /* not enabled at top level */ }
  const defs = readFileSync(`${root}/kprobe_events`, 'utf8').split('\n');
  for (const d of defs) {
    const m = new RegExp(`^[pr]\\d*:${GROUP}/(\\S+)`).exec(d);
    if (!m) continue;
    try { appendFileSync(`${root}/kprobe_events`, `-:${GROUP}/${m[1]}\n`); removed++; } catch { /* still enabled somewhere */ }
  }
  for (const name of INSTANCES) {
    const inst = `${root}/instances/${name}`;
    if (existsSync(inst)) { try { rmdirSync(inst); } catch { /* ignore */ } }
  }
  return removed;
}

/** One trace instance of ours: its own ring buffer, trace_pipe and event filters. */
class Instance {
  fd = -1;
  partial = '';
  constructor(readonly dir: string) {}
}

export class FtraceSession {
  readonly instance: string;
  /** Probes that may fire only for the agent's own reads (DeviceInfo snapshots): set_event_pid = our pid. */
  readonly selfInstance: string;
  private instances: Instance[] = [];
  private buf = Buffer.alloc(1 << 16);
  private reader = new TraceReader();
  /** Spec ids whose stack trigger was installed (collect --stacks). */
  readonly stackProbes = new Set<string>();
  get lost(): number { return this.reader.lost; }
  /** Receives every raw trace_pipe line (fixture capture). */
  tee?: (line: string) => void;

  /** stacks: record the kernel stack of the revoke steps' hits (plan.ts STACK_ROLES) with the stacktrace trigger. */
  constructor(readonly root: string, private plan: Plan, private bufferKb = 4096, private stacks = false) {
    this.instance = `${root}/instances/${GROUP}`;
    this.selfInstance = `${root}/instances/${GROUP}-self`;
  }

  attach(): AttachResult {
    cleanupStale(this.root);
    const result: AttachResult = { attached: [], failed: [] };
    // Return probes are defined first. trace_kprobe registers a probe when it is defined (disabled), and
    // kernel/kprobes.c add_new_kprobe() puts each new probe at the head of the aggregated probe's list: an
    // entry probe defined after the kretprobe on the same function runs before the kretprobe's handler
    // swaps the return address for the rethook trampoline, so its +0($stack) is still the real caller.
    const order = [...this.plan.attach].sort((x, y) => (x.spec.kind === 'return' ? 0 : 1) - (y.spec.kind === 'return' ? 0 : 1));
    for (const p of order) {
      try { appendFileSync(`${this.root}/kprobe_events`, kprobeDefinition(p) + '\n'); result.attached.push(p); }
      catch (e) { result.failed.push({ probe: p, error: `kprobe_events: ${(e as Error).message}${lastError(this.root)}` }); }
    }
    const main = new Instance(this.instance);
    const self = result.attached.some(selfOnly) ? new Instance(this.selfInstance) : undefined;
    // The self instance is read first: its snapshot hits name each device's vdev, so a hit in the same read that
    // names only vdev->memory_lock (the release of a window the collector started in) finds its device.
    for (const inst of [self, main]) {
      if (!inst) continue;
      mkdirSync(inst.dir);
      write(`${inst.dir}/tracing_on`, '0');
      write(`${inst.dir}/trace_clock`, 'mono');               // ts == CLOCK_MONOTONIC, like the agent's clock
      write(`${inst.dir}/buffer_size_kb`, String(inst === main ? this.bufferKb : 256));
      for (const opt of ['record-tgid']) { try { write(`${inst.dir}/options/${opt}`, '1'); } catch { /* top-level only on some kernels */ } }
      this.instances.push(inst);
    }
    if (self) write(`${self.dir}/set_event_pid`, String(process.pid));
    for (const p of [...result.attached]) {
      const dir = `${selfOnly(p) ? self!.dir : main.dir}/events/${GROUP}/${p.event}`;
      try {
        const f = eventFilter(p);
        if (f) write(`${dir}/filter`, f);
        if (this.stacks && takesStack(p)) {
          // a probe whose trigger the kernel refuses still traces, without stacks
          try { write(`${dir}/trigger`, stackTrigger(p)); this.stackProbes.add(p.spec.id); } catch { /* no stack for this probe */ }
        }
        write(`${dir}/enable`, '1');
      } catch (e) {
        result.attached.splice(result.attached.indexOf(p), 1);
        result.failed.push({ probe: p, error: `filter/enable: ${(e as Error).message}` });
        try { appendFileSync(`${this.root}/kprobe_events`, `-:${GROUP}/${p.event}\n`); } catch { /* ignore */ }
      }
    }
    this.reader = new TraceReader(this.stackProbes, new Set(result.attached.map((p) => p.event)));
    for (const inst of this.instances) {
      write(`${inst.dir}/tracing_on`, '1');
      inst.fd = openSync(`${inst.dir}/trace_pipe`, constants.O_RDONLY | constants.O_NONBLOCK);
    }
    return result;
  }

  /** Read what is buffered now (never blocks), at most `maxChunks` reads of 64 KiB per instance: under an event
   * storm the kernel can fill the pipe as fast as we parse it, and the caller must get its turn (flush, stop). */
  poll(onHit: (hit: ProbeHit) => void, maxChunks = 32): number {
    let n = 0;
    for (const inst of this.instances) {
      if (inst.fd < 0) continue;
      for (let chunk = 0; chunk < maxChunks; chunk++) {
        let got: number;
        try { got = readSync(inst.fd, this.buf, 0, this.buf.length, null); }
        catch (e) { if ((e as NodeJS.ErrnoException).code === 'EAGAIN') break; throw e; }
        if (got <= 0) break;
        const text = inst.partial + this.buf.toString('utf8', 0, got);
        const lines = text.split('\n');
        inst.partial = lines.pop() ?? '';
        for (const line of lines) {
          this.tee?.(line);
          this.reader.line(line, (h) => { onHit(h); n++; });
        }
      }
    }
    return n;
  }

  /** Ring-buffer overruns the kernel counted for our instances (events lost before we read them). */
  overruns(): number {
    let total = 0;
    for (const inst of this.instances) {
      try {
        for (const cpu of readdirSync(`${inst.dir}/per_cpu`)) {
          const m = /overrun:\s*(\d+)/.exec(readFileSync(`${inst.dir}/per_cpu/${cpu}/stats`, 'utf8'));
          if (m) total += Number(m[1]);
        }
      } catch { /* instance gone */ }
    }
    return total;
  }

  /** Stop tracing, hand over what is left, remove the instances and our probes. */
  detach(onHit: (hit: ProbeHit) => void): void {
    for (const inst of this.instances) { try { write(`${inst.dir}/tracing_on`, '0'); } catch { /* ignore */ } }
    while (this.poll(onHit, 64) > 0) { /* drain what is left */ }
    this.reader.flush(onHit);
    for (const inst of this.instances) if (inst.fd >= 0) { closeSync(inst.fd); inst.fd = -1; }
    cleanupStale(this.root);
  }
}
