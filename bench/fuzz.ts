// `npm run fuzz -- [--inputs N] [--seed S] [--out DIR] [--hang-ms MS]`: feeds N mutated inputs (default 100,000), in
// turn .pb frames, .pb files, .jsonl, ftrace text and bpftrace text (bench/fuzz-inputs.ts), through every reader of
// their format (bench/fuzz-check.ts) in a worker thread, and reports crashes, disagreements between readers, hangs
// (no progress for --hang-ms, default 10 s: the worker is stopped and restarted after the input), the slowest input
// per format and the peak memory. Inputs are numbered: the same seed and number make the same input again, and every
// input reported is written to DIR (default .cache/fuzz) with its mutation. Exit 1 on any crash, disagreement or hang.
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { checkInput, reasonClass } from './fuzz-check.js';
import { FuzzCorpus, KINDS, type FuzzKind } from './fuzz-inputs.js';

interface Job { seed: number; from: number; to: number; root: string; progress: SharedArrayBuffer }
interface Finding { type: 'crash' | 'disagreement'; index: number; kind: FuzzKind; mutation: string; text: string }
interface KindStats { inputs: number; totalMs: number; slowestMs: number; slowestIndex: number; classes: Record<string, number> }
type FromWorker =
  | { type: 'finding'; finding: Finding }
  | { type: 'stats'; kinds: Record<string, KindStats>; heapPeak: number; next: number; final: boolean };

// ---- the worker: inputs [from, to) ----
async function work(job: Job): Promise<void> {
  const progress = new Int32Array(job.progress);
  const corpus = FuzzCorpus.load(job.root);
  const kinds: Record<string, KindStats> = {};
  let heapPeak = 0;
  const report = (next: number, final: boolean) => parentPort!.postMessage({ type: 'stats', kinds, heapPeak, next, final } satisfies FromWorker);
  for (let i = job.from; i < job.to; i++) {
    Atomics.store(progress, 0, i);
    const input = corpus.input(job.seed, i);
    const t = performance.now();
    const r = await checkInput(input);
    const ms = performance.now() - t;
    const k = (kinds[input.kind] ??= { inputs: 0, totalMs: 0, slowestMs: 0, slowestIndex: -1, classes: {} });
    k.inputs++;
    k.totalMs += ms;
    if (ms > k.slowestMs) { k.slowestMs = ms; k.slowestIndex = i; }
    for (const c of new Set(r.classes)) k.classes[c] = (k.classes[c] ?? 0) + 1;
    for (const [type, text] of [['crash', r.crash], ['disagreement', r.disagreement]] as const) {
      if (text) parentPort!.postMessage({ type: 'finding', finding: { type, index: i, kind: input.kind, mutation: input.mutation, text } } satisfies FromWorker);
    }
    if (i % 1000 === 999) {
      heapPeak = Math.max(heapPeak, process.memoryUsage().heapUsed);
      report(i + 1, false);
    }
  }
  report(job.to, true);
}

// ---- the command ----
async function main(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: {
    inputs: { type: 'string', default: '100000' }, seed: { type: 'string', default: '1' }, out: { type: 'string', default: '.cache/fuzz' },
    'hang-ms': { type: 'string', default: '10000' }, help: { type: 'boolean' },
  } });
  if (values.help) { console.log('usage: npm run fuzz -- [--inputs N] [--seed S] [--out DIR] [--hang-ms MS]'); return 0; }
  const num = (name: string, v: string, min: number) => {
    if (!/^\d+$/.test(v) || Number(v) < min) throw new Error(`--${name}: expected an integer ≥ ${min}, got ${v}`);
    return Number(v);
  };
  const inputs = num('inputs', values.inputs!, 1), seed = num('seed', values.seed!, 0), hangMs = num('hang-ms', values['hang-ms']!, 100);
  const root = process.cwd();
  const out = resolve(values.out!);
  mkdirSync(out, { recursive: true });
  const corpus = FuzzCorpus.load(root); // the main thread makes reported inputs again from their numbers
  const machine = `${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, ${Math.round(totalmem() / 2 ** 30)} GiB, node ${process.version}`;
  console.log(`fuzz: ${inputs} inputs, seed ${seed}, ${KINDS.join(' / ')} in turn; machine ${machine}`);

  const findings: Finding[] = [];
  const hangs: { index: number; kind: FuzzKind; mutation: string }[] = [];
  const totals: Record<string, KindStats> = {};
  let heapPeak = 0;
  const t0 = Date.now();
  const save = (index: number, label: string) => {
    const input = corpus.input(seed, index);
    const ext = input.kind === 'pb' || input.kind === 'pb-file' ? 'pb' : input.kind === 'jsonl' ? 'jsonl' : 'txt';
    const file = join(out, `${label}-${seed}-${index}.${input.kind}.${ext}`);
    writeFileSync(file, input.bytes);
    return file;
  };
  const merge = (kinds: Record<string, KindStats>) => {
    for (const [name, k] of Object.entries(kinds)) {
      const t = (totals[name] ??= { inputs: 0, totalMs: 0, slowestMs: 0, slowestIndex: -1, classes: {} });
      t.inputs += k.inputs; t.totalMs += k.totalMs;
      if (k.slowestMs > t.slowestMs) { t.slowestMs = k.slowestMs; t.slowestIndex = k.slowestIndex; }
      for (const [c, n] of Object.entries(k.classes)) t.classes[c] = (t.classes[c] ?? 0) + n;
    }
  };

  // one worker at a time; after a hang, a new one from the next input
  for (let from = 0; from < inputs;) {
    const progress = new SharedArrayBuffer(4);
    const ext = import.meta.url.endsWith('.ts') ? 'ts' : 'js';
    const worker = new Worker(new URL(`./fuzz.${ext}`, import.meta.url), {
      workerData: { seed, from, to: inputs, root, progress } satisfies Job, execArgv: ext === 'ts' ? ['--import', 'tsx'] : [],
    });
    let last: Record<string, KindStats> = {};
    let lastPrint = Date.now();
    const next = await new Promise<number>((res, rej) => {
      let seen = -1, seenAt = Date.now();
      const watchdog = setInterval(() => {
        const at = Atomics.load(new Int32Array(progress), 0);
        if (at !== seen) { seen = at; seenAt = Date.now(); return; }
        if (Date.now() - seenAt < hangMs) return;
        clearInterval(watchdog);
        const input = corpus.input(seed, at);
        hangs.push({ index: at, kind: input.kind, mutation: input.mutation });
        console.log(`HANG: input ${at} (${input.kind}: ${input.mutation}) made no progress for ${hangMs} ms: ${save(at, 'hang')}`);
        void worker.terminate().then(() => res(at + 1));
      }, 250);
      worker.on('message', (m: FromWorker) => {
        if (m.type === 'finding') {
          findings.push(m.finding);
          if (findings.filter((f) => f.type === m.finding.type).length <= 20) {
            console.log(`${m.finding.type.toUpperCase()}: input ${m.finding.index} (${m.finding.kind}: ${m.finding.mutation}): ${m.finding.text.split('\n')[0]} → ${save(m.finding.index, m.finding.type)}`);
          }
          return;
        }
        last = m.kinds;
        heapPeak = Math.max(heapPeak, m.heapPeak);
        if (Date.now() - lastPrint > 30_000) {
          lastPrint = Date.now();
          console.log(`  ${m.next} inputs, ${((Date.now() - t0) / 1000).toFixed(0)} s`);
        }
        if (m.final) { clearInterval(watchdog); res(m.next); }
      });
      worker.once('error', (e) => { clearInterval(watchdog); rej(e); });
    });
    merge(last);
    await worker.terminate();
    from = next;
  }

  const seconds = (Date.now() - t0) / 1000;
  const crashes = findings.filter((f) => f.type === 'crash'), disagreements = findings.filter((f) => f.type === 'disagreement');
  const slowest = Object.entries(totals).sort((a, b) => b[1].slowestMs - a[1].slowestMs)[0];
  const summary = {
    command: `npm run fuzz -- --inputs ${inputs} --seed ${seed}`, machine, seconds, inputs: Object.values(totals).reduce((n, k) => n + k.inputs, 0),
    crashes: crashes.length, disagreements: disagreements.length, hangs: hangs.length, hangMs,
    peakRssMiB: Math.round(process.resourceUsage().maxRSS / 1024), workerHeapPeakMiB: Math.round(heapPeak / 2 ** 20),
    slowest: slowest ? { kind: slowest[0], ms: Number(slowest[1].slowestMs.toFixed(1)), index: slowest[1].slowestIndex,
      mutation: corpus.input(seed, slowest[1].slowestIndex).mutation, file: save(slowest[1].slowestIndex, 'slowest') } : undefined,
    byKind: Object.fromEntries(Object.entries(totals).map(([name, k]) => [name, { inputs: k.inputs, meanMs: Number((k.totalMs / k.inputs).toFixed(3)),
      slowestMs: Number(k.slowestMs.toFixed(1)), slowestIndex: k.slowestIndex,
      classes: Object.fromEntries(Object.entries(k.classes).sort((a, b) => b[1] - a[1])) }])),
    findingClasses: Object.fromEntries(Object.entries(findings.reduce<Record<string, number>>((acc, f) => {
      const c = `${f.type} ${f.kind}: ${reasonClass(f.text.split('\n')[0]!)}`;
      acc[c] = (acc[c] ?? 0) + 1;
      return acc;
    }, {})).sort((a, b) => b[1] - a[1])),
    findings: findings.slice(0, 50), hangList: hangs,
  };
  writeFileSync(join(out, `summary-${seed}.json`), JSON.stringify(summary, null, 2));
  console.log(JSON.stringify({ ...summary, findings: undefined, byKind: Object.fromEntries(Object.entries(summary.byKind).map(([k, v]) => [k, { ...v, classes: undefined }])) }, null, 2));
  console.log(`classes per format: ${join(out, `summary-${seed}.json`)}`);
  return crashes.length + disagreements.length + hangs.length > 0 ? 1 : 0;
}

if (isMainThread) {
  main(process.argv.slice(2)).then((code) => { process.exitCode = code; }, (err: unknown) => {
    console.error(`fuzz: ${err instanceof Error ? err.message : String(err)}`);
    process.exitCode = 2;
  });
} else {
  work(workerData as Job).catch((err: unknown) => { throw err; });
}
