// bpftrace backend: runs the generated program as a child process and reads its stdout.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type { Plan, PlannedProbe } from '../probes/plan.js';
import type { ProbeHit } from '../probes/hit.js';
import { READY, bpftraceScript } from './script.js';
import { BpftraceReader } from './parse.js';
import { addLost, lostCount } from '../probes/lost.js';

/** bpftrace prints each CPU's perf buffer as it reads it: a thread that moved between CPUs can show its return
 * before its entry. Hits wait this long (by their own timestamps) to be handed over in time order. */
export const REORDER_WINDOW_NS = 500e6;

/** At stop, bpftrace must have printed what its probes recorded before it gets SIGINT: bpftrace 0.17's
 * perf_event_printer() stops printing once the signal arrived and drops the records it had read but not printed, and
 * a slow host (QEMU/TCG: a kernel stack takes it milliseconds) prints seconds behind the kernel. Caught up = its stdout
 * quiet this long while it is not running. */
export const DRAIN_QUIET_MS = 500;
/** How long bpftrace may take from SIGINT to exit (it detaches every probe first: 9.4 s for 94 probes under TCG)
 * before it is killed, losing what it had not printed. */
export const EXIT_GRACE_MS = 60_000;
/** The longest a stop waits for bpftrace to catch up (a host whose probes never fall quiet stops after this). */
export const DRAIN_MAX_MS = 10_000;

/** Whether the process is running (state R in /proc/<pid>/stat) rather than asleep; false where /proc cannot say. */
function isRunning(pid: number | undefined): boolean {
  if (pid === undefined) return false;
  try { return /\) R /.test(readFileSync(`/proc/${pid}/stat`, 'utf8')); } catch { return false; }
}

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
  /** When bpftrace last wrote to its stdout (ms, performance.now()). */
  private lastOutputMs = 0;
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
    child.stdout!.on('data', (chunk: string) => { this.lastOutputMs = performance.now(); if (this.ingest(chunk)) ready(); });
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

  /** Stop bpftrace once it has printed what it recorded (waiting at most maxDrainMs), then hand over every hit left. */
  async detach(onHit: (h: ProbeHit) => void, maxDrainMs = DRAIN_MAX_MS): Promise<void> {
    const child = this.child;
    if (child && child.exitCode === null && child.signalCode === null) {
      let gone = false;
      const exited = new Promise<void>((r) => child.once('close', () => { gone = true; r(); }));
      /** ms or until bpftrace is gone, whichever comes first (no timer left behind to hold the process up) */
      const wait = async (ms: number) => { let t!: NodeJS.Timeout; await Promise.race([exited, new Promise((r) => { t = setTimeout(r, ms); })]); clearTimeout(t); };
      const until = performance.now() + maxDrainMs;
      while (!gone && performance.now() < until && (performance.now() - this.lastOutputMs < DRAIN_QUIET_MS || isRunning(child.pid))) await wait(100);
      if (!gone) child.kill('SIGINT');
      await wait(EXIT_GRACE_MS);
      if (!gone) child.kill('SIGKILL');
    }
    if (this.partial) { this.lines.push(this.partial); this.partial = ''; }
    this.poll(onHit, true);
  }
}
