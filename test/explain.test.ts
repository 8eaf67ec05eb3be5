// `revokescope explain` (issue 17): every finding of a simulated fleet with injected faults (every finding kind) and
// of a hand-written host is explained from the trace, from the store (chDB, filled by `revokescope run --input`, the
// windows kept in finding_events) and over the API; the three agree, the explanation names the rule and the kernel
// function of the finding's evidence, the state it shows at the finding's step is the state the evidence states, and
// the store's explanation survives the raw events' expiry. A device busier than the cap keeps its newest 2,000 events.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { simulate } from '../collectors/simulator/index.js';
import { run as explainRun } from '../services/cli/commands/explain.js';
import { analyzeBatches } from '../services/core/analysis.js';
import { RULES } from '../services/core/correlator/findings.js';
import { EXPLAIN_LIMITS } from '../services/core/finding-window.js';
import { FindingKind, type Episode, type EventBatch, type Finding } from '../services/core/model.js';
import { explain, type Explanation } from '../services/report/explain.js';
import { explainInputFromBatches, explainInputFromStore } from '../services/report/explain-input.js';
import { renderExplanation } from '../services/report/explain-table.js';
import { openStore, type OpenStore } from '../services/store/index.js';
import { readFindingWindow } from '../services/store/finding-window.js';
import { writeTrace } from '../services/trace/index.js';
import { tempDir } from './store-fixtures.js';
import { startApi, type TestApi } from './support/api-server.js';
import { Capture } from './support/capture.js';
import { Backing, TraceBuilder, TriggerKind } from './support/trace-builder.js';

const CLI = 'dist/services/cli/main.js';
const tmp = tempDir('revokescope-explain-');
const S = 1e9;
const BUSY = '0000:5e:00.0', CLEAR = '0000:3b:00.0';

function cli(...args: string[]) {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 180_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** A 6.12 host: CLEAR has a certain FAULT_WHILE_REVOKED right after a MEM_DISABLE write section; BUSY faults 2,100
 * times before its own, more events than a finding keeps. */
function handHost(): TraceBuilder {
  const b = new TraceBuilder('6.12', 'host-hand', 'boot-hand');
  b.info(0, CLEAR).mmap(1, CLEAR, 7, { snapshot: true, backing: Backing.LEGACY });
  b.trigger(1000, CLEAR, TriggerKind.MEM_DISABLE).acquire(1010, CLEAR).zap(1020, CLEAR).release(1100, CLEAR)
    .triggerEnd(1105, CLEAR, TriggerKind.MEM_DISABLE).fault(2000, CLEAR, 7, 0, true);
  b.info(0, BUSY).mmap(1, BUSY, 9, { snapshot: true, backing: Backing.LEGACY });
  for (let i = 0; i < 2100; i++) b.fault(10 + i * 10, BUSY, 9, 0, true);
  b.trigger(30_000, BUSY, TriggerKind.MEM_DISABLE).acquire(30_010, BUSY).zap(30_020, BUSY).release(30_100, BUSY)
    .triggerEnd(30_105, BUSY, TriggerKind.MEM_DISABLE).fault(31_000, BUSY, 9, 0, true);
  return b;
}

let batches: EventBatch[];
let findings: Finding[];
let episodes: Map<string, Episode>;
let trace: string;
let data: string;
let fromTrace: Map<string, Explanation>;
let fromStore: Map<string, Explanation>;
let opened: OpenStore;
let api: TestApi;
let cliStore: { certain: ReturnType<typeof cli>; id: string };

const withoutSource = (x: Explanation): unknown => ({ ...x, window: { ...x.window, source: '' } });

beforeAll(async () => {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npm run build\` first`);
  batches = [...simulate({ hosts: 20, durationNs: 30 * S, seed: 3 }).batches, ...handHost().batches(64)];
  trace = join(tmp.dir, 'fleet.pb');
  await writeTrace(trace, batches);
  const a = analyzeBatches(batches);
  findings = a.findings;
  episodes = new Map(a.episodes.map((e) => [e.episodeId, e]));
  fromTrace = new Map(findings.map((f) => [f.findingId, explain(explainInputFromBatches(batches, f, episodes.get(f.episodeId) ?? null, 'trace'))]));
  data = join(tmp.dir, 'data');
  const ingest = cli('run', '--input', trace, '--no-api', '--data-dir', data);
  expect(ingest.code, ingest.stderr).toBe(0);
  const certain = findings.find((f) => f.kind === FindingKind.SKIPPED_ZAP && !f.inconclusive)!;
  cliStore = { id: certain.findingId, certain: cli('explain', certain.findingId, '--data-dir', data, '--format', 'json') };
  opened = await openStore({ dataDir: data });
  fromStore = new Map();
  for (const f of findings) {
    const w = await readFindingWindow(opened.reader, f.findingId);
    if (w) fromStore.set(f.findingId, explain(explainInputFromStore(w, 'store')));
  }
  api = await startApi(opened.connection.client);
}, 400_000);

afterAll(async () => {
  await api?.app.close();
  await opened?.store.close();
  tmp.remove();
});

const kindsOf = (fs: Finding[]): string[] => [...new Set(fs.map((f) => FindingKind[f.kind]))].sort();

describe('explain', () => {
  it('has a finding of every kind to explain, certain and inconclusive', () => {
    const all = Object.keys(FindingKind).filter((k) => Number.isNaN(Number(k)) && k !== 'FINDING_KIND_UNSPECIFIED').sort();
    expect(kindsOf(findings)).toEqual(all);
    expect(findings.some((f) => f.inconclusive)).toBe(true);
    console.log(`explained ${findings.length} findings: ${kindsOf(findings).join(', ')}`);
  });

  it('names the rule and the kernel function of the finding\'s evidence, and says what to check next', () => {
    const ruleIds = new Set<string>(Object.values(RULES).map((r) => r.id));
    for (const f of findings) {
      const x = fromTrace.get(f.findingId)!;
      const ev = JSON.parse(f.evidence) as Record<string, unknown>;
      expect(x.rule).toEqual({ id: ev.rule, mirrors: ev.mirrors });
      expect(ruleIds.has(x.rule.id), x.rule.id).toBe(true);
      expect(x.finding).toMatchObject({ findingId: f.findingId, kind: FindingKind[f.kind], inconclusive: f.inconclusive });
      expect(x.unknown).toEqual(f.inconclusive ? ev.unknown : []);
      expect(x.next.length).toBeGreaterThan(0);
      expect(x.reason.length).toBeGreaterThan(20);
    }
  });

  it('replays the kept events into the same finding, and marks its step in the timeline', () => {
    for (const f of findings) {
      const x = fromTrace.get(f.findingId)!;
      // the busy device's DeviceInfo is older than its newest 2,000 events (the next test)
      expect(x.reproduced, `${FindingKind[f.kind]} ${f.findingId}`).toBe(!(f.hostname === 'host-hand' && f.device === BUSY));
      expect(x.timeline.filter((s) => s.finding)).toHaveLength(1);
      expect(x.stateAtFinding).not.toBeNull();
      const step = x.timeline.find((s) => s.finding)!;
      expect(step.tsNs).toBeLessThanOrEqual(f.tsNs);
      // relative times and durations: the episode's acquire is the origin when it was seen
      if (x.episode?.acquireRelNs === 0) expect(x.timeline.find((s) => s.event === 'lockAcquire' && s.relNs === 0)).toBeDefined();
      for (const s of x.timeline) if (s.event === 'zap') expect(s.durationNs).toBeGreaterThan(0);
    }
  });

  it('shows at the finding\'s step the state its evidence states, known when the finding is certain', () => {
    const reproduced = findings.filter((g) => fromTrace.get(g.findingId)!.reproduced);
    expect(reproduced.length).toBe(findings.length - 1);
    for (const f of reproduced) {
      const x = fromTrace.get(f.findingId)!;
      const ev = JSON.parse(f.evidence) as Record<string, unknown>;
      const st = x.stateAtFinding!.state;
      const what = `${FindingKind[f.kind]} ${f.findingId} ${f.evidence}`;
      const known = (piece: keyof typeof st): void => { if (!f.inconclusive) expect(st[piece].known, `${what}: ${piece}`).toBe(true); };
      switch (f.kind) {
        case FindingKind.FAULT_WHILE_REVOKED:
          if (ev.backing === 'DMABUF') expect(st.revoked.value || st.memoryEnabled.value === false, what).toBe(true);
          else { expect(st.memoryEnabled.value, what).toBe(false); known('memoryEnabled'); }
          break;
        case FindingKind.UNPAIRED_REVOKE:
          expect([st.revoked.value, st.memoryEnabled.value, st.open.value], what).toEqual([true, true, true]);
          known('revoked'); known('memoryEnabled'); known('open');
          break;
        case FindingKind.UNREVOKE_WITHOUT_REVOKE:
          expect(st.revoked.value, what).toBe(false); known('revoked');
          break;
        case FindingKind.LOCK_NOT_HELD:
          expect(st.lock.value, what).not.toBe(`held by tid ${String(ev.tid)}`); known('lock');
          break;
        case FindingKind.LOCK_HELD_OPEN:
          expect(st.lock.value, what).toBe(`held by tid ${String(ev.tid)}`);
          break;
        case FindingKind.SKIPPED_ZAP:
          if (ev.mappingState === 'known') expect(st.mappings.known, what).toBe(true);
          if (ev.deviceZaps === 0) expect(x.timeline.some((s) => s.inEpisode && s.event === 'zap' && s.what.includes('vdev inode')), what).toBe(false);
          break;
        case FindingKind.REDUNDANT_ZAP:
          if (ev.memoryEnabled !== undefined) expect(st.memoryEnabled.value, what).toBe(ev.memoryEnabled);
          if (ev.revoked !== undefined) expect(st.revoked.value, what).toBe(ev.revoked);
          if (ev.rule === RULES.redundantMemoryOff.id) expect(st.memoryEnabled.value === false || st.revoked.value, what).toBe(true);
          break;
        case FindingKind.SLOW_REVOKE:
          expect(x.episode?.revokeNs, what).toBe(ev.revokeNs);
          break;
        default:
          throw new Error(`no check for ${what}`);
      }
    }
  });

  it('says which fact established each piece: memory disabled by the MEM_DISABLE write section before a fault', () => {
    const f = findings.find((g) => g.hostname === 'host-hand' && g.device === CLEAR)!;
    expect(FindingKind[f.kind]).toBe('FAULT_WHILE_REVOKED');
    const x = fromTrace.get(f.findingId)!;
    expect(x.finding.inconclusive).toBe(false);
    const mem = x.stateAtFinding!.state.memoryEnabled;
    expect(mem).toMatchObject({ value: false, known: true });
    expect(mem.since?.event).toMatch(/down_write\(memory_lock\) acquired .* for MEM_DISABLE/);
    expect(x.stateAtFinding!.state.mappings).toMatchObject({ value: '1 device-fd (0 populated), 0 DMABUF', known: true });
    expect(x.timeline.map((s) => s.event)).toEqual(['deviceInfo', 'barMmap', 'trigger', 'lockAcquire', 'zap', 'lockRelease', 'triggerEnd', 'barFault']);
    expect(x.timeline.map((s) => s.relNs)).toEqual([-2_000_000, -1_999_000, -1_000_000, -990_000, -980_000, -900_000, -895_000, 0]);
    const text = renderExplanation(x);
    expect(text).toContain('rule      fault_while_revoked');
    expect(text).toMatch(/memory enabled +no +step 3 at −990 µs: down_write\(memory_lock\) acquired .* for MEM_DISABLE/);
    expect(text).toContain('what to check next');
  });

  it('keeps the newest 2,000 events of a busier device, and says so', () => {
    const f = findings.find((g) => g.hostname === 'host-hand' && g.device === BUSY)!;
    const x = fromTrace.get(f.findingId)!;
    expect(x.window).toMatchObject({ replayed: EXPLAIN_LIMITS.maxEvents, capped: true });
    expect(renderExplanation(x)).toContain('capped at 2000: older events left out');
    // what the kept events establish, said as such: the DeviceInfo that made memory a fact was left out
    expect(x.reproduced).toBe(false);
    expect(x.stateAtFinding!.state.memoryEnabled).toMatchObject({ value: false, known: false });
    expect(renderExplanation(x)).toContain('the kept events alone do not make this finding again');
    expect(fromStore.get(f.findingId)!.window).toMatchObject({ replayed: EXPLAIN_LIMITS.maxEvents, capped: true });
  });

  it('explains from the store exactly as from the trace', () => {
    expect(fromStore.size).toBe(findings.length);
    for (const f of findings) expect(withoutSource(fromStore.get(f.findingId)!), f.findingId).toEqual(withoutSource(fromTrace.get(f.findingId)!));
  });

  it('`revokescope explain ID --input TRACE` and `--data-dir` print the same explanation', async () => {
    expect(cliStore.certain.code, cliStore.certain.stderr).toBe(0);
    const out = new Capture(), err = new Capture();
    expect(await explainRun([cliStore.id, '--input', trace, '--format', 'json'], { stdout: out, stderr: err })).toBe(0);
    expect(withoutSource(JSON.parse(cliStore.certain.stdout) as Explanation)).toEqual(withoutSource(JSON.parse(out.text) as Explanation));
    const table = new Capture();
    expect(await explainRun([cliStore.id, '--input', trace], { stdout: table, stderr: err })).toBe(0);
    expect(table.text).toContain(`revokescope explain ${cliStore.id}`);
    expect(table.text).toContain('rule      skipped_zap.');
    const none = new Capture();
    expect(await explainRun(['0123456789abcdef', '--input', trace], { stdout: new Capture(), stderr: none })).toBe(2);
    expect(none.text).toContain('no finding 0123456789abcdef');
  });

  it('serves GET /api/v1/findings/{id}/explain: the store\'s explanation; 404 for an unknown id, 400 for a bad one', async () => {
    for (const f of findings) {
      const r = await fetch(`${api.url}/api/v1/findings/${f.findingId}/explain`);
      expect(r.status).toBe(200);
      expect(withoutSource(await r.json() as Explanation), f.findingId).toEqual(withoutSource(fromStore.get(f.findingId)!));
    }
    const missing = await fetch(`${api.url}/api/v1/findings/0123456789abcdef/explain`);
    expect(missing.status).toBe(404);
    expect(await missing.json()).toMatchObject({ statusCode: 404, message: 'finding 0123456789abcdef not found' });
    for (const bad of ['a%20b', 'x'.repeat(200), '%27%3B']) {
      const r = await fetch(`${api.url}/api/v1/findings/${bad}/explain`);
      expect(r.status, bad).toBe(400);
    }
  });

  it('keeps each finding\'s window after the raw events are gone (TTL)', async () => {
    const client = opened.connection.client;
    const [{ n }] = await (await client.query({ query: 'SELECT count() AS n FROM revokescope.finding_events FINAL', format: 'JSONEachRow' })).json<{ n: string }>();
    const total = findings.reduce((s, f) => s + fromStore.get(f.findingId)!.window.replayed, 0);
    expect(Number(n)).toBe(total);
    await client.command({ query: 'TRUNCATE TABLE revokescope.events' });
    for (const f of findings.slice(0, 12)) {
      const r = await fetch(`${api.url}/api/v1/findings/${f.findingId}/explain`);
      expect(withoutSource(await r.json() as Explanation)).toEqual(withoutSource(fromStore.get(f.findingId)!));
    }
  });
});
