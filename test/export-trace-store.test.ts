// `revokescope export-trace`: a time range of a real store (chDB, filled by `revokescope run --input`) as Chrome JSON
// trace events: the format's rules hold, the store's episodes and findings read back whole, times are the wall clock
// with each boot's own offset, and the drawing is the one `analyze --export-trace` makes of the same trace.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { simulate } from '../collectors/simulator/index.js';
import { run as analyzeRun } from '../services/cli/commands/analyze.js';
import { writeTrace } from '../services/trace/index.js';
import { tempDir } from './store-fixtures.js';
import { traceEventProblems, traceNames, toNs, type RawTraceEvent } from './support/trace-event-rules.js';
import { Backing, TraceBuilder, TriggerKind } from './support/trace-builder.js';
import { Capture } from './support/capture.js';

const CLI = 'dist/services/cli/main.js';
const tmp = tempDir('revokescope-export-store-');
afterAll(() => tmp.remove());

function cli(...args: string[]) {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 180_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}


interface Doc { traceEvents: (RawTraceEvent & { args?: Record<string, unknown> })[]; otherData: Record<string, unknown> }
const readDoc = (path: string): Doc => JSON.parse(readFileSync(path, 'utf8')) as Doc;

/** A 6.19 host whose FLR episode has a power transition, a trigger return and a DeviceInfo with its state (the kinds
 * and fields rules v2 added to the events table). */
function handHost(): TraceBuilder {
  const D = '0000:3b:00.0';
  const b = new TraceBuilder('6.19', 'host-hand', 'boot-hand');
  b.info(0, D, 'vfio-pci').mmap(1, D, 7, { snapshot: true, backing: Backing.LEGACY });
  b.trigger(100, D, TriggerKind.FLR).acquire(110, D, 100, 4_000).zap(120, D, { durationNs: 30_000 })
    .revoke(160, D, true, { count: 1, durationNs: 20_000 }).move(170, D, 5_000, 1, 11).power(400, D, 0, 3, 10_000)
    .revoke(500, D, false).release(600, D).triggerEnd(605, D, TriggerKind.FLR, 0);
  return b;
}

const day = 86_400_000;
let data: string, storeOut: string, traceOut: string;
let analysis: { episodes: Record<string, unknown>[]; findings: Record<string, unknown>[]; summary: { events: number } };
let exported: ReturnType<typeof cli>;

beforeAll(async () => {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npm run build\` first`);
  const trace = join(tmp.dir, 'fleet.pb');
  await writeTrace(trace, [...simulate({ hosts: 4, durationNs: 20e9, seed: 3 }).batches, ...handHost().batches(8)]);
  data = join(tmp.dir, 'data');
  const ingest = cli('run', '--input', trace, '--no-api', '--data-dir', data);
  expect(ingest.code, ingest.stderr).toBe(0);
  const json = new Capture();
  traceOut = join(tmp.dir, 'analyze.trace.json');
  expect(await analyzeRun([trace, '--format', 'json', '--export-trace', traceOut], { stdout: json, stderr: new Capture() })).toBe(0);
  analysis = JSON.parse(json.text);
  storeOut = join(tmp.dir, 'store.trace.json');
  const now = Date.now();
  exported = cli('export-trace', '--from', new Date(now - day).toISOString(), '--to', String(now + day), '--data-dir', data, '--out', storeOut);
}, 300_000);


describe('export-trace from the store', () => {
  it('writes every stored event, episode and finding of the range', () => {
    expect(exported.code, exported.stderr).toBe(0);
    expect(exported.stdout).toMatch(new RegExp(`wrote \\d+ trace events \\(${analysis.summary.events} raw events, ${analysis.episodes.length} episodes, ` +
      `${analysis.findings.length} findings, 5 hosts\\) to .*store\\.trace\\.json`));
    expect(exported.stderr).toBe('');
    const doc = readDoc(storeOut);
    expect(doc.otherData).toMatchObject({ command: 'export-trace', storedEvents: analysis.summary.events });
    expect(doc.otherData).not.toHaveProperty('undrawnEvents');
  });

  it('passes the format\'s rules', () => {
    const doc = readDoc(storeOut);
    expect(traceEventProblems(doc)).toEqual([]);
    for (const e of doc.traceEvents) if (e.ph !== 'M') expect(e.ts as number).toBeGreaterThanOrEqual(0);
  });

  it('reads back the stored episodes at wall-clock times: each boot keeps its own monotonic spacing', () => {
    const doc = readDoc(storeOut);
    const { thread } = traceNames(doc);
    const held = doc.traceEvents.filter((e) => e.ph === 'X' && thread.get(`${String(e.pid)}/${String(e.tid)}`)?.startsWith('memory_lock held') && e.args?.episode);
    const byId = new Map(held.map((e) => [String((e.args!.episode as Record<string, unknown>).episodeId), e]));
    // an episode that began before observation (acquire_ts_ns 0) has no span: its release is an instant
    const observed = analysis.episodes.filter((e) => String(e.acquireTsNs) !== '0');
    const unobserved = analysis.episodes.filter((e) => String(e.acquireTsNs) === '0');
    expect([...byId.keys()].sort()).toEqual(observed.map((e) => String(e.episodeId)).sort());
    const instants = doc.traceEvents.filter((e) => e.ph === 'i' && String(e.name).endsWith('began before observation'))
      .map((e) => String((e.args!.episode as Record<string, unknown>).episodeId));
    expect(instants.sort()).toEqual(unobserved.map((e) => String(e.episodeId)).sort());
    const firstOfBoot = new Map<string, { ts: number; acquire: number }>();
    for (const ep of observed) {
      const e = byId.get(String(ep.episodeId))!;
      expect(e.args!.episode).toEqual(ep);
      expect(toNs(e.dur as number)).toBe(Number(ep.releaseTsNs) - Number(ep.acquireTsNs));
      const boot = `${String(ep.hostname)}/${String(ep.bootId)}`;
      const ts = toNs(e.ts as number), acquire = Number(ep.acquireTsNs);
      const first = firstOfBoot.get(boot);
      if (!first) firstOfBoot.set(boot, { ts, acquire });
      else expect(ts - first.ts).toBe(acquire - first.acquire);
    }
    const origin = Date.parse(String(doc.otherData.originTime));
    expect(Math.abs(origin - (Date.now() - day))).toBeLessThan(60_000 + 5 * 60_000);
  });

  it('carries the findings with their evidence objects', () => {
    const doc = readDoc(storeOut);
    const marks = doc.traceEvents.filter((e) => e.cat === 'finding');
    expect(marks.map((m) => (m.args!.finding as { findingId: string }).findingId).sort()).toEqual(analysis.findings.map((f) => String(f.findingId)).sort());
    for (const f of analysis.findings) {
      const m = marks.find((x) => (x.args!.finding as { findingId: string }).findingId === f.findingId)!;
      expect((m.args!.finding as { evidence: unknown }).evidence).toEqual(f.evidence);
      expect(m.args!.finding).toMatchObject({ kind: f.kind, severity: f.severity, episodeId: f.episodeId, tsNs: f.tsNs });
    }
  });

  it('draws what analyze --export-trace draws', () => {
    const shape = (doc: Doc) => {
      const { process, thread } = traceNames(doc);
      return doc.traceEvents.filter((e) => (e.ph === 'X' || e.ph === 'i') && e.cat !== 'finding' && e.cat !== 'loss')
        .map((e) => `${process.get(e.pid as number)} | ${thread.get(`${String(e.pid)}/${String(e.tid)}`)!.replace(/ #\d+$/, '')} | ${String(e.name)} | ` +
          `${e.dur === undefined ? '' : toNs(e.dur as number)} | ${JSON.stringify(e.args)}`)
        .sort();
    };
    const fromStore = shape(readDoc(storeOut));
    expect(fromStore.length).toBeGreaterThan(1000);
    expect(fromStore).toEqual(shape(readDoc(traceOut)));
  });

  it('--host: one host only', () => {
    const out = join(tmp.dir, 'one.trace.json');
    const r = cli('export-trace', '--from', 'now-24h', '--to', String(Date.now() + day), '--host', 'host-hand', '--data-dir', data, '--out', out);
    expect(r.code, r.stderr).toBe(0);
    const doc = readDoc(out);
    const names = [...traceNames(doc).process.values()];
    expect(names.length).toBeGreaterThan(0);
    for (const n of names) expect(n.startsWith('host-hand ')).toBe(true);
    expect(traceEventProblems(doc)).toEqual([]);
  });

  it('an empty range, a range too large and bad arguments', () => {
    const empty = cli('export-trace', '--from', '2001-01-01T00:00:00Z', '--to', '2001-01-02T00:00:00Z', '--data-dir', data, '--out', join(tmp.dir, 'empty.json'));
    expect(empty.code).toBe(0);
    expect(empty.stderr).toMatch(/no raw events in the range/);
    expect(readDoc(join(tmp.dir, 'empty.json')).traceEvents).toEqual([]);
    const big = cli('export-trace', '--from', 'now-24h', '--to', String(Date.now() + day), '--max-events', '10', '--data-dir', data, '--out', join(tmp.dir, 'big.json'));
    expect(big.code).toBe(2);
    expect(big.stderr).toMatch(/the range holds more than 10 raw events \(--max-events\)/);
    expect(existsSync(join(tmp.dir, 'big.json'))).toBe(false);
    expect(cli('export-trace', '--from', 'now', '--to', 'now-1h', '--out', 'x', '--data-dir', data).stderr).toMatch(/--from must be before --to/);
    expect(cli('export-trace', '--from', 'yesterday', '--to', 'now', '--out', 'x', '--data-dir', data).stderr).toMatch(/--from must be an RFC 3339 time.*got 'yesterday'/);
    expect(cli('export-trace', '--from', 'now-1h', '--to', 'now', '--data-dir', data).code).toBe(2);
  });
});
