// Kernel overhead benchmark (issues 5, 14): inside the lab guest, storms of host work that runs through the
// functions our global probes sit on (none of it vfio's) run without probes, with the ftrace collector and with
// the bpftrace collector attached, all in one boot:
//   truncate  shrinking ftruncate on tmpfs: unmap_mapping_range() twice and the inode rwsem per iteration
//   mmap      anonymous mmap + touch + munmap: the anon_vma rwsem for write (down_write/up_write) twice, a VMA freed
//   revoke    PCI_COMMAND memory off/on on the lab's edu device (vfio's own write sections and zaps: the hits the collector
//             records; what `collect --stacks` adds a stack walk to)
// A counting pass (ftrace's function profiler, no probes) says how often each storm calls those functions, so the
// slowdown becomes a cost per call. Each backend runs twice: `<backend>_global` probes down_write, up_write,
// unmap_mapping_range ... themselves (filtered by caller, how the collector worked before call sites), `<backend>`
// probes vfio-pci-core's call sites of them; `<backend>_stacks` takes kernel stacks (collect --stacks). The storms run on
// one vCPU and the agent on the other (guest.sh), so a storm's slowdown is the probes' cost in the kernel; the agent's
// own CPU per label is measured apart (AGENT lines: its CPU time until it caught up with the storms' hits). Also checks
// that the collector shipped no event for the host storms (the revoke storm's are vfio's own: they are the point).
//   node dist/bench/kernel-overhead.js [--kernels 6.12,7.3] [--backends ftrace_global,ftrace,bpftrace_global,bpftrace] [--iterations 20000]
//   node dist/bench/kernel-overhead.js --kernels 6.12 --backends ftrace_stacks,bpftrace,bpftrace_stacks --iterations 2500
//     (the cost of stacks: ftrace_stacks alternates its events off, on without their stack triggers and on with them)
//   node dist/bench/kernel-overhead.js --kernels 6.12 --backends ... --from .cache/kernel-lab/bench-6.12   (summarize that run again)
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { replayRaw } from '../collectors/agent/replay.js';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

export interface StormRun { phase: string; storm: string; iterations: number; nsPerIteration: number }
/** The agent's CPU time (clock ticks, USER_HZ = 100) from attached until it caught up, and that wall time, per label. */
export interface AgentRun { cpuTicks: number; seconds: number }
export interface BenchFile { runs: StormRun[]; calls: Record<string, Record<string, number>>; agents: Record<string, AgentRun> }
export interface PhaseStats { min: number; median: number; runs: number }
export interface StormResult {
  storm: string; baseline: PhaseStats; callsPerIteration: Record<string, number>;
  perBackend: Record<string, {
    on: PhaseStats;
    /** ftrace only: the same agent with its events disabled, alternating with `on` (same-run baseline). */
    off?: PhaseStats;
    /** ftrace with stacks only: the same agent with its events enabled but their stack triggers removed, alternating
     * with `on` and `off` (what the same collector costs without stacks). */
    noStacks?: PhaseStats;
    /** Slowdown of the minimum against the baseline (ftrace: against `off`), and that over the probed calls. */
    slowdownPct: number; nsPerCall: number; probedCallsPerIteration: number;
  }>;
}
/** Per label, what the collector recorded of the revoke storm's runs (the workload's events) and what its agent spent. */
export interface LabelCost {
  /** Events of the workload (the revoke storm's runs, and their map and close) per revoke iteration timed with events on. */
  eventsPerIteration: number;
  /** The events that carry a kernel stack (LockAcquire, Zap, BarFault of collect --stacks) per revoke iteration timed with
   * stacks on. */
  stackEventsPerIteration: number;
  hits: number;
  /** The agent's CPU from attached until caught up, per probe hit it read (µs). */
  agentUsPerHit: number;
  agentCpuS: number;
}
/** What stacks add on the revoke storm (µs per iteration, and per stack-carrying event). `sameAgent`: measured within one
 * agent run, its events with and without their stack triggers alternating (ftrace); else `<backend>_stacks` against
 * `<backend>`, each against its own reference (ftrace: its agent with events off; bpftrace: no collector). */
export interface StackCost {
  backend: string; sameAgent: boolean; extraUsPerIteration: number; extraPct: number; usPerStack: number; agentExtraUsPerHit: number;
}
/** Quantiles (µs) of a duration the kernel's own timestamps give, over the workload's events. */
export interface Spread { n: number; p10: number; median: number; p90: number }
/** Per label, the revoke path's times from the events' kernel timestamps, split by whether the step took a stack:
 * zap = Zap.duration_ns (a zap's stack is taken at its entry, under memory_lock), wait = LockAcquire.wait_ns (the lock
 * hit's stack is taken before down_write), hold = release − acquire, revoke = the episode's revoke latency as the
 * correlator computes it (end of its last zap − acquire). Quantiles of thousands of events: far less exposed to the
 * host's load than a storm's time. */
export interface PathTimes { zap: Spread; wait: Spread; hold: Spread; revoke: Spread }
export interface RevokePath { withStack: PathTimes; withoutStack: PathTimes }
/** The agent's user-space work per hit (parse + decode, as `replayRaw` does it) on this machine's CPU, for the label's raw
 * capture as recorded and with its stack lines taken out. */
export interface ReplayCost { hits: number; stackHits: number; usPerHitWithStacks: number; usPerHitWithout: number }
export interface OverheadResult {
  kernel: string; storms: StormResult[]; stormEventsShipped: Record<string, number>; labels: Record<string, LabelCost>; stacks: StackCost[];
  revokePath: Record<string, RevokePath>; replay: Record<string, ReplayCost>; labSeconds: number; out: string;
}

/** bench.txt: "phase <name>" lines, "STORM <kind> n total_ns ns_per_iter" lines, "CALLS <kind> <function> <count>" lines,
 * "AGENT <label> <cpu ticks> <seconds>" lines. */
export function parseBench(text: string): BenchFile {
  const runs: StormRun[] = [];
  const calls: Record<string, Record<string, number>> = {};
  const agents: Record<string, AgentRun> = {};
  let phase = '';
  for (const line of text.split('\n')) {
    const p = /^phase (\S+)/.exec(line);
    if (p) { phase = p[1]!; continue; }
    const m = /^STORM (\w+) (\d+) (\d+) ([\d.]+)/.exec(line);
    if (m) { runs.push({ phase, storm: m[1]!, iterations: Number(m[2]), nsPerIteration: Number(m[4]) }); continue; }
    const c = /^CALLS (\w+) (\w+) (\d+)/.exec(line);
    if (c) { (calls[c[1]!] ??= {})[c[2]!] = Number(c[3]); continue; }
    const a = /^AGENT (\w+) (\d+) ([\d.]+)/.exec(line);
    if (a) agents[a[1]!] = { cpuTicks: Number(a[2]), seconds: Number(a[3]) };
  }
  return { runs, calls, agents };
}

const median = (xs: number[]) => { const s = [...xs].sort((a, b) => a - b); return s.length ? s[Math.floor(s.length / 2)]! : NaN; };

/** Functions the collector probes on the whole host (not only vfio's calls) per backend: every call pays for them. */
export function probedHostFunctions(collectLog: string): string[] {
  const fns = new Set<string>();
  for (const m of collectLog.matchAll(/^\s+\w+\s+k(?:ret)?probe\s+(\w+)(?!.*\[vfio)/gm)) fns.add(m[1]!);
  return [...fns];
}

export function summarize(file: BenchFile, probed: Record<string, string[]>): StormResult[] {
  const out: StormResult[] = [];
  for (const storm of [...new Set(file.runs.map((r) => r.storm))]) {
    const of = (...phases: string[]) => file.runs.filter((r) => r.storm === storm && phases.includes(r.phase));
    const stats = (rs: StormRun[]): PhaseStats => ({ min: Math.min(...rs.map((r) => r.nsPerIteration)), median: median(rs.map((r) => r.nsPerIteration)), runs: rs.length });
    const baseline = stats(of('baseline', 'baseline-after'));
    // the counting pass ran the storm once with as many iterations as its timed runs
    const iterations = of('baseline')[0]?.iterations ?? 1;
    const callsPerIteration = Object.fromEntries(Object.entries(file.calls[storm] ?? {}).map(([f, n]) => [f, n / iterations]));
    const perBackend: StormResult['perBackend'] = {};
    for (const phase of [...new Set(file.runs.map((r) => r.phase))].filter((p) => p.startsWith('with-') && !p.includes('/'))) {
      const backend = phase.slice('with-'.length);
      const on = stats(of(phase));
      const offRuns = of(`${phase}/off`), noStackRuns = of(`${phase}/nostacks`);
      const off = offRuns.length ? stats(offRuns) : undefined;
      const noStacks = noStackRuns.length ? stats(noStackRuns) : undefined;
      const ref = off?.min ?? baseline.min;
      const calls = (probed[backend] ?? []).reduce((n, f) => n + (callsPerIteration[f] ?? 0), 0);
      perBackend[backend] = { on, ...(off ? { off } : {}), ...(noStacks ? { noStacks } : {}), slowdownPct: (on.min / ref - 1) * 100,
        nsPerCall: calls >= 0.05 ? (on.min - ref) / calls : NaN, probedCallsPerIteration: calls };
    }
    out.push({ storm, baseline, callsPerIteration, perBackend });
  }
  return out;
}

/** The price of stacks per backend that ran both with and without them (`<backend>` and `<backend>_stacks`). */
export function stackCosts(storms: StormResult[], labels: Record<string, LabelCost>): StackCost[] {
  const revoke = storms.find((s) => s.storm === 'revoke');
  if (!revoke) return [];
  const out: StackCost[] = [];
  for (const [label, withStacks] of Object.entries(revoke.perBackend)) {
    if (!label.endsWith('_stacks')) continue;
    const backend = label.slice(0, -'_stacks'.length), without = revoke.perBackend[backend];
    const stacksPerIteration = labels[label]?.stackEventsPerIteration ?? 0;
    const cost = (sameAgent: boolean, extraNs: number, ref: number): StackCost => ({ backend, sameAgent, extraUsPerIteration: extraNs / 1000,
      extraPct: extraNs / ref * 100, usPerStack: stacksPerIteration > 0 ? extraNs / 1000 / stacksPerIteration : NaN,
      agentExtraUsPerHit: (labels[label]?.agentUsPerHit ?? NaN) - (labels[backend]?.agentUsPerHit ?? NaN) });
    const ref = (x: StormResult['perBackend'][string]) => x.off?.min ?? revoke.baseline.min;
    if (withStacks.noStacks) out.push(cost(true, withStacks.on.min - withStacks.noStacks.min, ref(withStacks)));
    else if (without) out.push(cost(false, (withStacks.on.min - ref(withStacks)) - (without.on.min - ref(without)), revoke.baseline.min));
  }
  return out;
}

/** The label's agent and its events of the revoke storm. trace: the label's trace-<label>.jsonl lines; collectLog: its log. */
export function labelCost(label: string, file: BenchFile, trace: string, collectLog: string): LabelCost {
  const events = trace.split('\n').filter(Boolean).flatMap((l) => (JSON.parse(l).events ?? []) as { comm?: string; stackId?: string | number }[])
    .filter((e) => e.comm === 'workload');
  const iterations = (...phases: string[]) => file.runs.filter((r) => phases.includes(r.phase) && r.storm === 'revoke').reduce((n, r) => n + r.iterations, 0);
  const stats = [...collectLog.matchAll(/^collect: (\{.*\})$/gm)].pop();
  const hits = stats ? Number(JSON.parse(stats[1]!).hits) : NaN;
  const agentCpuS = (file.agents[label]?.cpuTicks ?? NaN) / 100;
  return { eventsPerIteration: events.length / iterations(`with-${label}`, `with-${label}/nostacks`),
    stackEventsPerIteration: events.filter((e) => Number(e.stackId ?? 0) > 0).length / iterations(`with-${label}`),
    hits, agentCpuS, agentUsPerHit: agentCpuS * 1e6 / hits };
}

const spread = (xs: number[]): Spread => {
  const s = [...xs].sort((a, b) => a - b), at = (p: number) => (s.length ? s[Math.min(s.length - 1, Math.floor(s.length * p))]! / 1000 : NaN);
  return { n: s.length, p10: at(0.1), median: at(0.5), p90: at(0.9) };
};

type TraceEvent = { comm?: string; device?: string; tsNs?: string; stackId?: string; zap?: { durationNs?: string }; lockAcquire?: { waitNs?: string }; lockRelease?: object };

/** The revoke path's times of the workload's events in a trace (trace-<label>.jsonl text). */
export function revokePath(trace: string): RevokePath {
  const events = trace.split('\n').filter(Boolean).flatMap((l) => (JSON.parse(l).events ?? []) as TraceEvent[]).filter((e) => e.comm === 'workload');
  const part = (stack: boolean): PathTimes => {
    const hold: number[] = [], revoke: number[] = [];
    const open = new Map<string, { acquire: TraceEvent; zapEnd?: number; zapStack?: boolean }>();
    for (const e of events) {
      const key = e.device ?? '';
      if (e.lockAcquire) open.set(key, { acquire: e });
      else if (e.zap && open.has(key)) Object.assign(open.get(key)!, { zapEnd: Number(e.tsNs) + Number(e.zap.durationNs ?? 0), zapStack: !!e.stackId });
      else if (e.lockRelease && open.has(key)) {
        const w = open.get(key)!;
        open.delete(key);
        if (!!w.acquire.stackId === stack) hold.push(Number(e.tsNs) - Number(w.acquire.tsNs));
        if (w.zapEnd !== undefined && w.zapStack === stack) revoke.push(w.zapEnd - Number(w.acquire.tsNs));
      }
    }
    return { zap: spread(events.filter((e) => e.zap && !!e.stackId === stack).map((e) => Number(e.zap!.durationNs ?? 0))),
      wait: spread(events.filter((e) => e.lockAcquire && !!e.stackId === stack).map((e) => Number(e.lockAcquire!.waitNs ?? 0))), hold: spread(hold),
      revoke: spread(revoke) };
  };
  return { withStack: part(true), withoutStack: part(false) };
}

const bpftraceRaw = (header: string) => / backend=bpftrace /.test(header);

/** A raw capture without its kernel stacks: ftrace's "<stack trace>" entries and their " => " frames, or bpftrace's
 * blank and indented kstack lines; and the header's stacks= (so the reader does not wait for stacks). */
export function withoutStacks(raw: string): string {
  const [header, ...lines] = raw.split('\n');
  const stackLine = bpftraceRaw(header!) ? (l: string) => /^(\s.*)?$/.test(l) : (l: string) => /: <stack trace>$/.test(l) || l.startsWith(' => ');
  return [header!.replace(/ stacks=\S*/, ''), ...lines.filter((l) => !stackLine(l))].join('\n');
}

/** CPU per hit of replaying a raw capture with and without its stacks (best of `rounds`, interleaved). */
export function replayCost(raw: string, rounds = 5): ReplayCost {
  const plain = withoutStacks(raw);
  const lines = raw.split('\n');
  const hits = plain.split('\n').filter((l) => /^\s*\S+-\d+ .*: \w+: \(|^RS \w+ \d/.test(l)).length;
  const stackHits = bpftraceRaw(lines[0]!) ? lines.filter((l, i) => l.startsWith('RS ') && lines[i + 1] === '').length
    : lines.filter((l) => /: <stack trace>$/.test(l)).length;
  const cpu = (text: string) => {
    const t0 = process.cpuUsage();
    replayRaw(text, { hostname: 'bench', bootId: 'bench' });
    const d = process.cpuUsage(t0);
    return d.user + d.system;
  };
  let withS = Infinity, without = Infinity;
  for (let i = 0; i < rounds; i++) { withS = Math.min(withS, cpu(raw)); without = Math.min(without, cpu(plain)); }
  return { hits, stackHits, usPerHitWithStacks: withS / hits, usPerHitWithout: without / hits };
}

/** from: the directory of an earlier lab run to summarize again (no boot). */
export function runKernelOverhead(opts: { kernel?: string; backends?: string; iterations?: number; from?: string } = {}): OverheadResult {
  const here = dirname(fileURLToPath(import.meta.url));
  const repo = join(here, existsSync(join(here, '../test')) ? '..' : '../..');
  const kernel = opts.kernel ?? '6.12', backends = opts.backends ?? 'ftrace_global,ftrace,bpftrace_global,bpftrace';
  const t0 = Date.now();
  const out = opts.from ?? execFileSync(join(repo, 'test/kernel-lab/run.sh'), {
    env: { ...process.env, KERNEL: kernel, MODE: 'bench', BACKENDS: backends, RS_ITERATIONS: String(opts.iterations ?? 5000), QEMU_TIMEOUT: '3600',
      OUT: join(repo, '.cache/kernel-lab', `bench-${kernel}`) },
    encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'],
  }).trim().split('\n').pop()!;
  const file = parseBench(readFileSync(join(out, 'bench.txt'), 'utf8'));
  // a label whose phase never ran (its collector did not attach, or the guest script lost it) is an error, not a missing row
  const ran = new Set(file.runs.map((r) => r.phase));
  const missing = backends.split(',').filter((b) => !ran.has(`with-${b}`));
  if (missing.length) throw new Error(`kernel-overhead: no storm ran with ${missing.join(', ')} (see ${join(out, 'guest.log')})`);
  const probed: Record<string, string[]> = {};
  const stormEventsShipped: Record<string, number> = {};
  const labels: Record<string, LabelCost> = {};
  const path: Record<string, RevokePath> = {};
  const replay: Record<string, ReplayCost> = {};
  for (const b of backends.split(',')) {
    const log = join(out, `collect-${b}.log`);
    if (!existsSync(log)) continue;
    const collectLog = readFileSync(log, 'utf8');
    probed[b] = probedHostFunctions(collectLog);
    const f = join(out, `trace-${b}.jsonl`);
    if (!existsSync(f)) continue;
    const trace = readFileSync(f, 'utf8');
    stormEventsShipped[b] = trace.split('\n').filter(Boolean)
      .flatMap((l) => (JSON.parse(l).events ?? []) as { comm?: string }[]).filter((e) => e.comm === 'storm').length;
    labels[b] = labelCost(b, file, trace, collectLog);
    path[b] = revokePath(trace);
    const raw = join(out, `raw-${b}.txt`);
    if (b.endsWith('_stacks') && existsSync(raw)) replay[b] = replayCost(readFileSync(raw, 'utf8'));
  }
  const storms = summarize(file, probed);
  return { kernel, storms, stormEventsShipped, labels, stacks: stackCosts(storms, labels), revokePath: path, replay, labSeconds: (Date.now() - t0) / 1000, out };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { values } = parseArgs({ options: { kernels: { type: 'string' }, backends: { type: 'string' }, iterations: { type: 'string' }, from: { type: 'string' } } });
  for (const kernel of (values.kernels ?? '6.12,7.3').split(',')) {
    const r = runKernelOverhead({ kernel, backends: values.backends, iterations: values.iterations ? Number(values.iterations) : undefined, from: values.from });
    console.log(`\nDebian ${kernel} (lab ${r.labSeconds.toFixed(0)} s, ${r.out})`);
    const f = (p: PhaseStats) => `${(p.min / 1000).toFixed(1)} / ${(p.median / 1000).toFixed(1)}`;
    for (const s of r.storms) {
      console.log(`${s.storm}: calls per iteration ${Object.entries(s.callsPerIteration).map(([fn, n]) => `${fn} ${n.toFixed(2)}`).join(', ')}; ` +
        `no collector ${f(s.baseline)} µs/it (min / median of ${s.baseline.runs})`);
      for (const [b, x] of Object.entries(s.perBackend))
        console.log(`  ${b.padEnd(16)} on ${f(x.on)}${x.noStacks ? `  without stacks ${f(x.noStacks)}` : ''}${x.off ? `  events off ${f(x.off)}` : ''}  ${x.slowdownPct >= 0 ? '+' : ''}${x.slowdownPct.toFixed(1)}%` +
          `  probed host calls/it ${x.probedCallsPerIteration.toFixed(2)}${Number.isFinite(x.nsPerCall) ? `  ${x.nsPerCall.toFixed(0)} ns per probed call` : ''}`);
    }
    console.log(`events shipped for the storms: ${JSON.stringify(r.stormEventsShipped)}`);
    for (const [b, l] of Object.entries(r.labels))
      console.log(`  ${b.padEnd(16)} revoke storm: ${l.eventsPerIteration.toFixed(2)} events/it, ${l.stackEventsPerIteration.toFixed(2)} with a stack; ` +
        `agent ${l.agentCpuS.toFixed(1)} s CPU for ${l.hits} hits = ${l.agentUsPerHit.toFixed(0)} µs per hit`);
    const sp = (x: Spread) => `${x.median.toFixed(0)} µs (p10 ${x.p10.toFixed(0)}, p90 ${x.p90.toFixed(0)}, n ${x.n})`;
    for (const [b, p] of Object.entries(r.revokePath))
      for (const [k, v] of [['with a stack', p.withStack], ['without', p.withoutStack]] as const)
        if (v.zap.n || v.wait.n) console.log(`  ${b.padEnd(16)} ${k.padEnd(12)} zap ${sp(v.zap)}; lock wait ${sp(v.wait)}; revoke ${sp(v.revoke)}; hold ${sp(v.hold)}`);
    for (const [b, c] of Object.entries(r.replay))
      console.log(`  ${b.padEnd(16)} agent parse + decode on this CPU (replay of raw-${b}.txt, ${c.hits} hits, ${c.stackHits} stacks): ` +
        `${c.usPerHitWithStacks.toFixed(1)} µs per hit with the stacks, ${c.usPerHitWithout.toFixed(1)} without`);
    for (const c of r.stacks)
      console.log(`stacks on ${c.backend} (${c.sameAgent ? 'same agent, triggers on vs off' : `${c.backend}_stacks vs ${c.backend}`}): ` +
        `${c.extraUsPerIteration >= 0 ? '+' : ''}${c.extraUsPerIteration.toFixed(1)} µs per revoke iteration (${c.extraPct >= 0 ? '+' : ''}${c.extraPct.toFixed(1)}% of the reference), ` +
        `${c.usPerStack.toFixed(1)} µs per stack in the kernel` +
        (Number.isFinite(c.agentExtraUsPerHit) ? `; agent ${c.agentExtraUsPerHit >= 0 ? '+' : ''}${c.agentExtraUsPerHit.toFixed(0)} µs CPU per hit` : ''));
  }
}
