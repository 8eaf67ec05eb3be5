// The store's engine cost alone: a simulated fleet's raw events, then its episodes, written straight to a fresh
// chDB store (writers, Native inserts, views, rollups), process CPU counted until background merges settle.
//   node dist/bench/store.js [--hosts 500] [--seconds 60]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { simulate } from '../collectors/simulator/index.js';
import { analyzeBatches } from '../services/core/analysis.js';
import { openStore } from '../services/store/index.js';

export interface StoreBench {
  events: number;
  episodes: number;
  /** Process CPU per raw event: row building, the insert, merges until they settle. */
  usPerRawEvent: number;
  /** The same per episode: dedup view, the three latency rollups, merges. */
  usPerEpisode: number;
  /** Both, per raw event of the fleet. */
  usPerEventAll: number;
  settleSeconds: number;
}

export async function benchStore(o: { hosts?: number; seconds?: number } = {}): Promise<StoreBench> {
  const seconds = o.seconds ?? 60;
  const { batches } = simulate({ hosts: o.hosts ?? 500, durationNs: seconds * 1e9, seed: 1 });
  const { episodes } = analyzeBatches(batches);
  const events = batches.reduce((n, b) => n + (b.events?.length ?? 0), 0);
  const dir = mkdtempSync(join(tmpdir(), 'revokescope-bench-store-'));
  const settleSeconds = 3;
  const { store } = await openStore({ dataDir: dir }, { wallClockShiftNs: -seconds * 1e9 });
  try {
    const cpu = (): number => { const u = process.cpuUsage(); return (u.user + u.system) / 1e6; };
    const settle = (): Promise<void> => new Promise((r) => setTimeout(r, settleSeconds * 1000));
    let c0 = cpu();
    await store.prepareBatches(batches);
    for (const b of batches) await store.writeBatch(b);
    await store.flush();
    await settle();
    const rawCpu = cpu() - c0;
    c0 = cpu();
    for (let i = 0; i < episodes.length; i += 5000) await store.writeEpisodes(episodes.slice(i, i + 5000));
    await store.flush();
    await settle();
    const episodeCpu = cpu() - c0;
    const us = (s: number, n: number): number => Math.round((s / n) * 1e8) / 100;
    return { events, episodes: episodes.length, usPerRawEvent: us(rawCpu, events), usPerEpisode: us(episodeCpu, episodes.length),
      usPerEventAll: us(rawCpu + episodeCpu, events), settleSeconds };
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { values } = parseArgs({ options: { hosts: { type: 'string' }, seconds: { type: 'string' } } });
  const r = await benchStore({ hosts: values.hosts ? Number(values.hosts) : undefined, seconds: values.seconds ? Number(values.seconds) : undefined });
  console.log(JSON.stringify(r, null, 2));
}
