// bpftrace backend: runs the generated program as a child process and reads its stdout.
import { spawn, type ChildProcess } from 'node:child_process';
import type { Plan, PlannedProbe } from '../probes/plan.js';
import type { ProbeHit } from '../probes/hit.js';
import { READY, bpftraceScript } from './script.js';
import { BpftraceReader } from './parse.js';
import { addLost, lostCount } from '../probes/lost.js';

/** bpftrace prints each CPU's perf buffer as it reads it: a thread that moved between CPUs can show its return
 * before its entry. Hits wait this long (by their own timestamps) to be handed over in time order. */
export const REORDER_WINDOW_NS = 500e6;

export class BpftraceSession {
  private child?: ChildProcess;
  private lines: string[] = [];
  /** Parsed hits not yet handed over (the newest REORDER_WINDOW_NS of them). */
  private held: ProbeHit[] = [];
  /** When the program was attached as a whole (its BEGIN): earlier hits come from a partly attached program. */
  private readyTs = -Infinity;
  /** Hits dropped because they fired before every probe was attached. */
  beforeReady = 0;
  private partial = '';
  private lostCount = 0;
  private readonly reader = new BpftraceReader();
  private stderr = '';
  readonly script: string;
  /** Receives every raw output line (fixture capture). */
  tee?: (line: string) => void;

  constructor(private plan: Plan, private binary = 'bpftrace', private attachTimeoutMs = 120_000, private env: NodeJS.ProcessEnv = {},
    stacks = false) {
    this.script = bpftraceScript(plan, plan.attach, process.pid, stacks);
  }

  async attach(): Promise<{ attached: PlannedProbe[]; failed: { probe: PlannedProbe; error: string }[] }> {
    // BPFTRACE_STRLEN: PCI addresses are 12 characters; short strings keep the perf records small.
    // BPFTRACE_PERF_RB_PAGES: 1 MiB per CPU (bpftrace's default of 64 pages loses events in bursts such as
    // back-to-back resets); the environment's own value wins.
    const child = spawn(this.binary, ['-e', this.script], { stdio: ['ignore', 'pipe', 'pipe'],
      env: { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', BPFTRACE_PERF_RB_PAGES: '256', ...this.env, BPFTRACE_STRLEN: '16' } });
    this.child = child;
    let ready!: () => void, failed!: (e: Error) => void;
    const readyP = new Promise<void>((res, rej) => { ready = res; failed = rej; });
    child.stdout!.setEncoding('utf8');
    child.stdout!.on('data', (chunk: string) => { if (this.ingest(chunk)) ready(); });
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (c: string) => {
      this.stderr += c;
      for (const m of c.matchAll(/Lost (\d+) events/g)) this.lostCount = addLost(this.lostCount, lostCount(m[1]!));
    });
    child.on('exit', (code) => failed(new Error(`bpftrace exited (${code}) before attaching: ${this.stderr.trim().split('\n').slice(-3).join(' | ')}`)));
    child.on('error', (e) => failed(new Error(`cannot run ${this.binary}: ${e.message}`)));
    const timer = setTimeout(() => failed(new Error('bpftrace did not attach in time')), this.attachTimeoutMs);
    try { await readyP; } finally { clearTimeout(timer); }
    // bpftrace attaches every probe or fails as a whole.
    return { attached: this.plan.attach, failed: [] };
  }

  /** bpftrace's stdout, as it arrives; true once the program said it is attached. */
  ingest(chunk: string): boolean {
    const parts = (this.partial + chunk).split('\n');
    this.partial = parts.pop() ?? '';
    let isReady = false;
    for (const l of parts) {
      if (l.startsWith(READY)) { isReady = true; this.readyTs = Number(l.slice(READY.length + 1)) || this.readyTs; }
      this.lines.push(l);                                      // (the raw capture keeps the READY line: replay drops the same hits)
    }
    return isReady;
  }

  /** Hand over, in time order, the hits older than the reorder window (all of them with `all`). */
  poll(onHit: (h: ProbeHit) => void, all = false): number {
    const lines = this.lines; this.lines = [];
    for (const l of lines) {
      this.tee?.(l);
      // a stack's frames follow their hit's line: they are added to that hit (held here for the reorder window)
      const hit = this.reader.line(l);
      if (!hit) continue;
      // bpftrace attaches one probe after the other (minutes in a slow guest) and those attached fire at once:
      // a window with zaps but no lock events yet is not an observation, it is dropped
      if (hit.tsNs < this.readyTs) { this.beforeReady++; continue; }
      this.held.push(hit);
    }
    if (!this.held.length) return 0;
    this.held.sort((a, b) => a.tsNs - b.tsNs);
    const cut = all ? Infinity : this.held[this.held.length - 1]!.tsNs - REORDER_WINDOW_NS;
    let n = 0;
    while (n < this.held.length && this.held[n]!.tsNs <= cut) onHit(this.held[n++]!);
    this.held.splice(0, n);
    return n;
  }

  lost(): number { return addLost(this.lostCount, this.reader.lost); }

  async detach(onHit: (h: ProbeHit) => void): Promise<void> {
    const child = this.child;
    if (child && child.exitCode === null) {
      const exited = new Promise<void>((r) => child.once('close', () => r()));
      child.kill('SIGINT');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
      if (child.exitCode === null) child.kill('SIGKILL');
    }
    if (this.partial) { this.lines.push(this.partial); this.partial = ''; }
    this.poll(onHit, true);
  }
}
