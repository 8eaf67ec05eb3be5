// Fleet simulator generation speed: the in-memory form (simulate) on a 50-host minute and the streaming
// form (FleetSimulator.batches) on a longer run, with the heap growth the stream leaves behind.
import { FleetSimulator, simulate } from '../collectors/simulator/index.js';

export interface SimulatorBench {
  events: number;
  inMemoryEventsPerSec: number;
  streamedEvents: number;
  streamedEventsPerSec: number;
  streamHeapGrowthMiB: number;
}

export async function benchSimulator(opts: { hosts?: number; durationNs?: number; streamDurationNs?: number } = {}): Promise<SimulatorBench> {
  const hosts = opts.hosts ?? 50;
  const durationNs = opts.durationNs ?? 60e9;
  let best = Infinity; let events = 0;
  for (let i = 0; i < 3; i++) {
    const t0 = process.hrtime.bigint();
    const { truth } = simulate({ hosts, durationNs, seed: 1 + i });
    const dt = Number(process.hrtime.bigint() - t0) / 1e9;
    if (dt / truth.stats.events < best) { best = dt / truth.stats.events; events = truth.stats.events; }
  }
  const heap0 = process.memoryUsage().heapUsed;
  let heapMax = heap0; let streamed = 0; let n = 0;
  const t0 = process.hrtime.bigint();
  for (const b of new FleetSimulator({ hosts, durationNs: opts.streamDurationNs ?? 600e9, seed: 1 }).batches()) {
    streamed += b.events?.length ?? 0;
    if (++n % 1000 === 0) heapMax = Math.max(heapMax, process.memoryUsage().heapUsed);
  }
  const dt = Number(process.hrtime.bigint() - t0) / 1e9;
  return {
    events, inMemoryEventsPerSec: Math.round(1 / best), streamedEvents: streamed,
    streamedEventsPerSec: Math.round(streamed / dt), streamHeapGrowthMiB: Math.round((heapMax - heap0) / 2 ** 20),
  };
}
