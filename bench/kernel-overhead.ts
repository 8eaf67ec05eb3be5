// Kernel overhead benchmark (issue 5): inside the lab guest, a storm of unrelated unmap_mapping_range()
// calls (shrinking ftruncate on tmpfs: two calls per iteration, none on a vfio mapping) runs without
// probes, with the ftrace collector attached and with the bpftrace collector attached.
// Reports per-iteration cost and how many events the collector shipped for the storm (must be 0).
//   node dist/bench/kernel-overhead.js [--backends ftrace,bpftrace] [--iterations 20000]
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

export interface StormRun { phase: string; iterations: number; nsPerIteration: number }
export interface OverheadResult { runs: StormRun[]; perPhase: Record<string, number>; stormEventsShipped: Record<string, number>; labSeconds: number }

/** bench.txt: a phase name line ("baseline", "with-ftrace", ...) followed by "STORM n total_ns ns_per_iter" lines. */
export function parseBench(text: string): StormRun[] {
  const runs: StormRun[] = [];
  let phase = '';
  for (const line of text.split('\n')) {
    const m = /^STORM (\d+) (\d+) ([\d.]+)/.exec(line);
    if (m) runs.push({ phase, iterations: Number(m[1]), nsPerIteration: Number(m[3]) });
    else if (line.trim()) phase = line.trim();
  }
  return runs;
}

const median = (xs: number[]) => { const s = [...xs].sort((a, b) => a - b); return s.length ? s[Math.floor(s.length / 2)]! : NaN; };

export function runKernelOverhead(opts: { backends?: string; iterations?: number } = {}): OverheadResult {
  const repo = join(dirname(fileURLToPath(import.meta.url)), existsSync(join(dirname(fileURLToPath(import.meta.url)), '../test')) ? '..' : '../..');
  const t0 = Date.now();
  const out = execFileSync(join(repo, 'test/kernel-lab/run.sh'), {
    env: { ...process.env, MODE: 'bench', BACKENDS: opts.backends ?? 'ftrace,bpftrace', RS_ITERATIONS: String(opts.iterations ?? 20000), QEMU_TIMEOUT: '400' },
    encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'],
  }).trim().split('\n').pop()!;
  const runs = parseBench(readFileSync(join(out, 'bench.txt'), 'utf8'));
  const perPhase: Record<string, number> = {};
  for (const p of new Set(runs.map((r) => r.phase))) perPhase[p] = median(runs.filter((r) => r.phase === p).map((r) => r.nsPerIteration));
  const stormEventsShipped: Record<string, number> = {};
  for (const b of (opts.backends ?? 'ftrace,bpftrace').split(',')) {
    const f = join(out, `trace-${b}.jsonl`);
    if (!existsSync(f)) continue;
    stormEventsShipped[b] = readFileSync(f, 'utf8').split('\n').filter(Boolean)
      .flatMap((l) => (JSON.parse(l).events ?? []) as { comm?: string }[]).filter((e) => e.comm === 'storm').length;
  }
  return { runs, perPhase, stormEventsShipped, labSeconds: (Date.now() - t0) / 1000 };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { values } = parseArgs({ options: { backends: { type: 'string' }, iterations: { type: 'string' } } });
  const r = runKernelOverhead({ backends: values.backends, iterations: values.iterations ? Number(values.iterations) : undefined });
  const base = r.perPhase.baseline ?? NaN;
  console.log('phase                 ns/iteration   ns per unmap_mapping_range call vs baseline');
  for (const [p, v] of Object.entries(r.perPhase)) console.log(`${p.padEnd(20)} ${v.toFixed(0).padStart(12)}   ${p === 'baseline' ? '' : ((v - base) / 2).toFixed(0).padStart(8)}`);
  console.log(`events shipped for the storm: ${JSON.stringify(r.stormEventsShipped)}; lab ${r.labSeconds.toFixed(0)} s`);
}
