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
// probes vfio-pci-core's call sites of them; `<backend>_stacks` takes kernel stacks (collect --stacks). Also checks that the
// collector shipped no event for the host storms (the revoke storm's are vfio's own: they are the point).
//   node dist/bench/kernel-overhead.js [--kernels 6.12,7.3] [--backends ftrace_global,ftrace,bpftrace_global,bpftrace] [--iterations 20000]
//   node dist/bench/kernel-overhead.js --kernels 6.12 --backends ftrace,ftrace_stacks,bpftrace,bpftrace_stacks   (the cost of stacks)
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

export interface StormRun { phase: string; storm: string; iterations: number; nsPerIteration: number }
export interface BenchFile { runs: StormRun[]; calls: Record<string, Record<string, number>> }
export interface PhaseStats { min: number; median: number; runs: number }
export interface StormResult {
  storm: string; baseline: PhaseStats; callsPerIteration: Record<string, number>;
  perBackend: Record<string, {
    on: PhaseStats;
    /** ftrace only: the same agent with its events disabled, alternating with `on` (same-run baseline). */
    off?: PhaseStats;
    /** Slowdown of the minimum against the baseline (ftrace: against `off`), and that over the probed calls. */
    slowdownPct: number; nsPerCall: number; probedCallsPerIteration: number;
  }>;
}
export interface OverheadResult { kernel: string; storms: StormResult[]; stormEventsShipped: Record<string, number>; labSeconds: number; out: string }

/** bench.txt: "phase <name>" lines, "STORM <kind> n total_ns ns_per_iter" lines, "CALLS <kind> <function> <count>" lines. */
export function parseBench(text: string): BenchFile {
  const runs: StormRun[] = [];
  const calls: Record<string, Record<string, number>> = {};
  let phase = '';
  for (const line of text.split('\n')) {
    const p = /^phase (\S+)/.exec(line);
    if (p) { phase = p[1]!; continue; }
    const m = /^STORM (\w+) (\d+) (\d+) ([\d.]+)/.exec(line);
    if (m) { runs.push({ phase, storm: m[1]!, iterations: Number(m[2]), nsPerIteration: Number(m[4]) }); continue; }
    const c = /^CALLS (\w+) (\w+) (\d+)/.exec(line);
    if (c) (calls[c[1]!] ??= {})[c[2]!] = Number(c[3]);
  }
  return { runs, calls };
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
    for (const phase of [...new Set(file.runs.map((r) => r.phase))].filter((p) => p.startsWith('with-') && !p.endsWith('/off'))) {
      const backend = phase.slice('with-'.length);
      const on = stats(of(phase));
      const offRuns = of(`${phase}/off`);
      const off = offRuns.length ? stats(offRuns) : undefined;
      const ref = off?.min ?? baseline.min;
      const calls = (probed[backend] ?? []).reduce((n, f) => n + (callsPerIteration[f] ?? 0), 0);
      perBackend[backend] = { on, ...(off ? { off } : {}), slowdownPct: (on.min / ref - 1) * 100, nsPerCall: calls >= 0.05 ? (on.min - ref) / calls : NaN, probedCallsPerIteration: calls };
    }
    out.push({ storm, baseline, callsPerIteration, perBackend });
  }
  return out;
}

export function runKernelOverhead(opts: { kernel?: string; backends?: string; iterations?: number } = {}): OverheadResult {
  const here = dirname(fileURLToPath(import.meta.url));
  const repo = join(here, existsSync(join(here, '../test')) ? '..' : '../..');
  const kernel = opts.kernel ?? '6.12', backends = opts.backends ?? 'ftrace_global,ftrace,bpftrace_global,bpftrace';
  const t0 = Date.now();
  const out = execFileSync(join(repo, 'test/kernel-lab/run.sh'), {
    env: { ...process.env, KERNEL: kernel, MODE: 'bench', BACKENDS: backends, RS_ITERATIONS: String(opts.iterations ?? 5000), QEMU_TIMEOUT: '3600',
      OUT: join(repo, '.cache/kernel-lab', `bench-${kernel}`) },
    encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'],
  }).trim().split('\n').pop()!;
  const file = parseBench(readFileSync(join(out, 'bench.txt'), 'utf8'));
  const probed: Record<string, string[]> = {};
  const stormEventsShipped: Record<string, number> = {};
  for (const b of backends.split(',')) {
    const log = join(out, `collect-${b}.log`);
    if (existsSync(log)) probed[b] = probedHostFunctions(readFileSync(log, 'utf8'));
    const f = join(out, `trace-${b}.jsonl`);
    if (!existsSync(f)) continue;
    stormEventsShipped[b] = readFileSync(f, 'utf8').split('\n').filter(Boolean)
      .flatMap((l) => (JSON.parse(l).events ?? []) as { comm?: string }[]).filter((e) => e.comm === 'storm').length;
  }
  return { kernel, storms: summarize(file, probed), stormEventsShipped, labSeconds: (Date.now() - t0) / 1000, out };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { values } = parseArgs({ options: { kernels: { type: 'string' }, backends: { type: 'string' }, iterations: { type: 'string' } } });
  for (const kernel of (values.kernels ?? '6.12,7.3').split(',')) {
    const r = runKernelOverhead({ kernel, backends: values.backends, iterations: values.iterations ? Number(values.iterations) : undefined });
    console.log(`\nDebian ${kernel} (lab ${r.labSeconds.toFixed(0)} s, ${r.out})`);
    const f = (p: PhaseStats) => `${(p.min / 1000).toFixed(1)} / ${(p.median / 1000).toFixed(1)}`;
    for (const s of r.storms) {
      console.log(`${s.storm}: calls per iteration ${Object.entries(s.callsPerIteration).map(([fn, n]) => `${fn} ${n.toFixed(2)}`).join(', ')}; ` +
        `no collector ${f(s.baseline)} µs/it (min / median of ${s.baseline.runs})`);
      for (const [b, x] of Object.entries(s.perBackend))
        console.log(`  ${b.padEnd(16)} on ${f(x.on)}${x.off ? `  events off ${f(x.off)}` : ''}  ${x.slowdownPct >= 0 ? '+' : ''}${x.slowdownPct.toFixed(1)}%` +
          `  probed host calls/it ${x.probedCallsPerIteration.toFixed(2)}${Number.isFinite(x.nsPerCall) ? `  ${x.nsPerCall.toFixed(0)} ns per probed call` : ''}`);
    }
    console.log(`events shipped for the storms: ${JSON.stringify(r.stormEventsShipped)}`);
  }
}
