// Benchmark: the embedded pipeline end to end — simulator → protobuf → bus → correlator → chDB — measured
// as events/s until every row is stored, CPU seconds per million events (this process: JS + the chDB
// engine's threads), bytes per raw event on disk after OPTIMIZE FINAL, and peak RSS.
//   node dist/bench/pipeline.js [--hosts 50] [--duration 60s] [--seed 1] [--keep DIR]
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import type { EventBatch } from '../services/core/model.js';
import { runEmbedded } from '../services/pipeline/embedded.js';
import { parseDuration } from '../services/pipeline/cli.js';
import { simulatorSource } from '../services/pipeline/sources.js';
import { openStore } from '../services/store/index.js';
import { InProcessBus } from '../services/transport/bus.js';

export interface PipelineBenchOptions {
  hosts?: number;
  durationNs?: number;
  seed?: number;
  /** Keep the data directory (default: a temp dir, removed). */
  dataDir?: string;
  /** Use these batches instead of the simulator. */
  source?: () => AsyncIterable<EventBatch> | Promise<AsyncIterable<EventBatch>>;
}

export interface PipelineBenchResult {
  name: string;
  hosts: number;
  simulatedSeconds: number;
  events: number;
  episodes: number;
  findings: number;
  wallSeconds: number;
  eventsPerSecond: number;
  cpuSeconds: number;
  cpuSecondsPerMillionEvents: number;
  /** Raw events table after OPTIMIZE FINAL: whole parts on disk (columns, marks, index) per stored event. */
  bytesPerEventOnDisk: number;
  peakRssMiB: number;
  /** Peak RSS while the pipeline ran (sampled every 100 ms), before OPTIMIZE FINAL. */
  pipelineRssMiB: number;
  /** RSS with the store open and migrated, before the pipeline started. */
  idleRssMiB: number;
  /** RSS over the run, by quarter of its wall time (100 ms samples): peak and median of each quarter. A
   * bounded pipeline has the same figures in the last quarter as in the second, however long the trace. */
  rssByQuarterMiB: { peak: number[]; median: number[] };
  /** Linux: CPU seconds per million events by thread — the JS main thread (scan, correlate, rows), the other
   * live threads (chDB's queries, views and merges; V8's GC helper threads; libuv's pool), and threads that had
   * exited by the end (the simulator worker: generate + encode). */
  cpuByThread?: { main: number; engine: number; exited: number };
  targets: { eventsPerSecond: number; bytesPerEvent: number };
}

export async function benchPipeline(o: PipelineBenchOptions = {}): Promise<PipelineBenchResult> {
  const hosts = o.hosts ?? 50;
  const durationNs = o.durationNs ?? 60e9;
  const seed = o.seed ?? 1;
  const dir = o.dataDir ?? mkdtempSync(join(tmpdir(), 'revokescope-bench-'));
  const { store, reader, connection } = await openStore({ dataDir: dir }, { wallClockShiftNs: -durationNs });
  try {
    const source = o.source ? await o.source() : await simulatorSource({ hosts, durationNs, seed });
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    const idleRss = process.memoryUsage.rss();
    const rssSamples: number[] = [];
    const sampler = setInterval(() => { rssSamples.push(process.memoryUsage.rss()); }, 100);
    const threads0 = threadCpu();
    const stats = await runEmbedded({ source, store, bus: new InProcessBus({ capacity: 256 }) }).done; // ends with store.flush(): every row written
    const wallSeconds = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    const threads1 = threadCpu();
    clearInterval(sampler);
    rssSamples.push(process.memoryUsage.rss());
    const pipelineRss = rssSamples.reduce((a, b) => Math.max(a, b), idleRss);
    const cpuSeconds = (cpu.user + cpu.system) / 1e6;

    const db = store.schema.database;
    await connection.client.command({ query: `OPTIMIZE TABLE ${db}.events FINAL` });
    const q = async <T>(query: string) => (await connection.client.query({ query, query_params: { db }, format: 'JSONEachRow' })).json<T>();
    const [parts] = await q<{ rows: string; bytes: string }>(
      `SELECT sum(rows) AS rows, sum(bytes_on_disk) AS bytes FROM system.parts WHERE database = {db:String} AND table = 'events' AND active`);
    const storedEvents = Number(parts!.rows);
    const counts = await reader.counts();
    return {
      name: 'pipeline (embedded: simulator → bus → correlator → chDB)',
      hosts, simulatedSeconds: durationNs / 1e9,
      events: stats.events, episodes: counts.episodes, findings: counts.findings,
      wallSeconds: round(wallSeconds, 2),
      eventsPerSecond: Math.round(stats.events / wallSeconds),
      cpuSeconds: round(cpuSeconds, 2),
      cpuSecondsPerMillionEvents: round(cpuSeconds / (stats.events / 1e6), 2),
      bytesPerEventOnDisk: round(Number(parts!.bytes) / storedEvents, 2),
      peakRssMiB: Math.round(process.resourceUsage().maxRSS / 1024),
      pipelineRssMiB: Math.round(pipelineRss / 2 ** 20),
      idleRssMiB: Math.round(idleRss / 2 ** 20),
      rssByQuarterMiB: byQuarter(rssSamples),
      ...(threads0 && threads1 ? { cpuByThread: (() => {
        const perM = (x: number) => round(x / (stats.events / 1e6), 2);
        const main = threads1.main - threads0.main, engine = threads1.others - threads0.others;
        return { main: perM(main), engine: perM(engine), exited: perM(Math.max(0, cpuSeconds - main - engine)) };
      })() } : {}),
      targets: { eventsPerSecond: 300_000, bytesPerEvent: 12 },
    };
  } finally {
    await store.close();
    if (!o.dataDir) rmSync(dir, { recursive: true, force: true });
  }
}

const round = (x: number, d: number) => Math.round(x * 10 ** d) / 10 ** d;

/** Peak and median (MiB) of each quarter of a series of RSS samples taken at a fixed interval. */
function byQuarter(samples: readonly number[]): { peak: number[]; median: number[] } {
  const peak: number[] = [], median: number[] = [];
  for (let q = 0; q < 4; q++) {
    const part = samples.slice(Math.floor((q * samples.length) / 4), Math.floor(((q + 1) * samples.length) / 4));
    if (part.length === 0) continue;
    const sorted = [...part].sort((a, b) => a - b);
    peak.push(Math.round(sorted[sorted.length - 1]! / 2 ** 20));
    median.push(Math.round(sorted[Math.floor(sorted.length / 2)]! / 2 ** 20));
  }
  return { peak, median };
}

/** CPU seconds of this process's live threads (Linux /proc): the main thread and all others. */
function threadCpu(): { main: number; others: number } | undefined {
  try {
    const ticks = 100; // USER_HZ
    let main = 0, others = 0;
    for (const tid of readdirSync('/proc/self/task')) {
      const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const s = (Number(f[11]) + Number(f[12])) / ticks;
      if (Number(tid) === process.pid) main += s; else others += s;
    }
    return { main, others };
  } catch {
    return undefined;
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { values } = parseArgs({ options: { hosts: { type: 'string' }, duration: { type: 'string' }, seed: { type: 'string' }, keep: { type: 'string' } } });
  const result = await benchPipeline({
    hosts: values.hosts ? Number(values.hosts) : undefined,
    durationNs: values.duration ? parseDuration(values.duration) : undefined,
    seed: values.seed ? Number(values.seed) : undefined,
    dataDir: values.keep,
  });
  console.log(JSON.stringify(result, null, 2));
}
