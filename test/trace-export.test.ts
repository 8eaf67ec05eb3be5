// `analyze --export-trace`: the Chrome JSON trace-event file checked against the format's documented rules
// (test/support/trace-event-rules.ts, which is itself shown to catch each broken rule), read back (the episodes and
// findings it carries are analyze's, at their times), stable (the same trace read as .pb or .jsonl, cut into other
// batches, gives the same file), bounded (--export-max-events), and with the tracks the issue names.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { simulate } from '../collectors/simulator/index.js';
import { run } from '../services/cli/commands/analyze.js';
import { type EventBatch } from '../services/core/model.js';
import { writeTrace } from '../services/trace/index.js';
import { traceEventProblems, traceNames, toNs, type RawTraceEvent } from './support/trace-event-rules.js';
import { Backing, TraceBuilder, TriggerKind } from './support/trace-builder.js';
import { Capture } from './support/capture.js';

const dir = mkdtempSync(join(tmpdir(), 'revokescope-export-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));


async function analyze(...argv: string[]) {
  const stdout = new Capture();
  const stderr = new Capture();
  const code = await run(argv, { stdout, stderr });
  return { code, stdout: stdout.text, stderr: stderr.text };
}

interface Doc { traceEvents: (RawTraceEvent & { args?: Record<string, unknown> })[]; otherData: Record<string, unknown> }
const readDoc = (path: string): Doc => JSON.parse(readFileSync(path, 'utf8')) as Doc;

const D = '0000:3b:00.0';
const D2 = '0000:3b:00.1';
const D3 = '0000:3b:00.2';

/** A 6.19 host: one FLR episode that exercises every device track (trigger span, lock wait and hold, DEVICE zap,
 * DMABUF revoke, move_notify to two DMABUFs' importers, a power transition, a function reset, mappings), two more
 * tasks waiting for the lock meanwhile (overlapping waits), a zap by a task that does not hold the lock (LOCK_NOT_HELD),
 * and a device whose write section began before the collector started. */
function handTrace(): TraceBuilder {
  const b = new TraceBuilder('6.19', 'host-a', 'boot-a');
  b.info(0, D, 'vfio-pci').mmap(1, D, 7, { snapshot: true, backing: Backing.LEGACY }).mmap(2, D, 8, { backing: Backing.DMABUF, bar: 2 });
  b.info(0, D2, 'vfio-pci');
  b.trigger(100, D, TriggerKind.FLR).acquire(110, D, 100, 4_000)
    .zap(120, D, { durationNs: 30_000 })
    .revoke(160, D, true, { count: 2, durationNs: 200_000 })
    .move(170, D, 50_000, 2, 11).move(230, D, 80_000, 1, 12)
    .power(400, D, 0, 3, 10_000);
  b.events.push({ tsNs: b.events.at(-1)!.tsNs! + 20_000, tid: 100, pid: 100, comm: 'qemu', device: D, resetFunction: { ret: 0, durationNs: 100_000 } });
  b.acquire(700, D, 200, 150_000); // another task waited from 550 µs (while 100 still held it): lock wait overlaps the hold
  b.release(600, D).triggerEnd(605, D, TriggerKind.FLR, 0);
  b.release(800, D, 200);
  b.acquire(820, D, 400, 250_000).release(850, D, 400); // waited from 570 µs: its wait overlaps the one of task 200
  b.acquire(900, D2, 300).zap(950, D2, { durationNs: 10_000, tid: 301 }).release(1_000, D2, 300); // zap by tid 301: LOCK_NOT_HELD
  b.fault(1_200, D, 7);
  // the collector started inside a write section of D3: its release comes first (an episode begun before observation)
  b.info(0, D3, 'vfio-pci').zap(50, D3, { tid: 500, durationNs: 5_000 }).release(60, D3, 500);
  return b;
}

let handPb: string, handJsonl: string, handOut: string;
let fleetPb: string, fleetJsonl: string, fleetOut: string, fleetOutJsonl: string;
let fleetAnalysis: { episodes: Record<string, unknown>[]; findings: Record<string, unknown>[] };
let handAnalysis: { episodes: Record<string, unknown>[]; findings: Record<string, unknown>[] };

beforeAll(async () => {
  handPb = join(dir, 'hand.pb'); handJsonl = join(dir, 'hand.jsonl'); handOut = join(dir, 'hand.trace.json');
  await writeTrace(handPb, handTrace().batches(4));
  await writeTrace(handJsonl, handTrace().batches(64));
  const hand = await analyze(handPb, '--format', 'json', '--export-trace', handOut);
  expect(hand.code, hand.stderr).toBe(0);
  handAnalysis = JSON.parse(hand.stdout);

  const { batches } = simulate({ hosts: 6, durationNs: 20e9, seed: 17 });
  fleetPb = join(dir, 'fleet.pb'); fleetJsonl = join(dir, 'fleet.jsonl');
  fleetOut = join(dir, 'fleet.trace.json'); fleetOutJsonl = join(dir, 'fleet-jsonl.trace.json');
  await writeTrace(fleetPb, batches);
  await writeTrace(fleetJsonl, recut(batches, 7));
  const r = await analyze(fleetPb, '--format', 'json', '--export-trace', fleetOut);
  expect(r.code, r.stderr).toBe(0);
  fleetAnalysis = JSON.parse(r.stdout);
  const j = await analyze(fleetJsonl, '--export-trace', fleetOutJsonl);
  expect(j.code, j.stderr).toBe(0);
});

/** The same events cut into batches of `size` per host (contiguous seq). */
function recut(batches: EventBatch[], size: number): EventBatch[] {
  const byHost = new Map<string, EventBatch[]>();
  for (const b of batches) {
    const k = `${b.host!.hostname}/${b.host!.bootId}`;
    if (!byHost.has(k)) byHost.set(k, []);
    byHost.get(k)!.push(b);
  }
  const out: EventBatch[] = [];
  for (const list of byHost.values()) {
    // batches with loss (dropped or a seq gap) stay as they are: recutting would move the loss
    let run: EventBatch[] = [];
    const flush = () => {
      const events = run.flatMap((b) => b.events ?? []);
      const first = Number(run[0]?.firstSeq ?? 0);
      for (let i = 0; i < events.length; i += size) {
        const piece = events.slice(i, i + size);
        // a piece is cut right after its last event; the last piece keeps the run's last heartbeat time
        const nowNs = i + size >= events.length ? run.at(-1)!.nowNs : piece.at(-1)!.tsNs;
        out.push({ host: run[0]!.host, firstSeq: first + i, dropped: 0, events: piece, nowNs });
      }
      run = [];
    };
    let next = Number(list[0]!.firstSeq ?? 0);
    for (const b of list) {
      if (Number(b.dropped ?? 0) > 0 || Number(b.firstSeq ?? 0) !== next || (b.events ?? []).length === 0) {
        flush();
        out.push(b);
      } else {
        run.push(b);
      }
      next = Number(b.firstSeq ?? 0) + (b.events ?? []).length;
    }
    flush();
  }
  return out;
}

describe('the format: documented rules', () => {
  it('the simulated fleet and the hand-written trace pass every rule', () => {
    for (const path of [handOut, fleetOut]) {
      const doc = readDoc(path);
      expect(traceEventProblems(doc), path).toEqual([]);
      expect(doc.traceEvents.length).toBeGreaterThan(20);
      // Perfetto reads a displayTimeUnit of "ns" as the unit of ts itself: the export must not set one
      expect(doc).not.toHaveProperty('displayTimeUnit');
      for (const e of doc.traceEvents) {
        expect(Number.isInteger(e.pid) && (e.pid as number) > 0).toBe(true);
        if (e.ph === 'X') expect(e.dur as number).toBeGreaterThanOrEqual(0);
        if (e.ph !== 'M') expect(e.ts as number).toBeGreaterThanOrEqual(0);
      }
    }
  });

  it('the rules checker catches each broken rule', () => {
    const M = [{ name: 'process_name', ph: 'M', pid: 1, args: { name: 'p' } }, { name: 'thread_name', ph: 'M', pid: 1, tid: 2, args: { name: 't' } }];
    const check = (events: object[]) => traceEventProblems({ traceEvents: [...M, ...events] });
    expect(check([{ name: 'a', ph: 'X', ts: 1, dur: 5, pid: 1, tid: 2 }, { name: 'b', ph: 'X', ts: 2, dur: 1, pid: 1, tid: 2 }])).toEqual([]);
    expect(check([{ name: 'a', ph: 'X', ts: 1, dur: 5, pid: 1, tid: 2 }, { name: 'b', ph: 'X', ts: 2, dur: 9, pid: 1, tid: 2 }])[0]).toMatch(/overlaps/);
    expect(check([{ name: 'a', ph: 'X', ts: 1, dur: -1, pid: 1, tid: 2 }])[0]).toMatch(/dur -1 < 0/);
    expect(check([{ name: 'a', ph: 'B', ts: 1, pid: 1, tid: 2 }])[0]).toMatch(/has no E/);
    expect(check([{ name: 'a', ph: 'E', ts: 1, pid: 1, tid: 2 }])[0]).toMatch(/E without an open B/);
    expect(check([{ name: 'a', ph: 'B', ts: 1, pid: 1, tid: 2 }, { name: 'b', ph: 'E', ts: 2, pid: 1, tid: 2 }])[0]).toMatch(/closes B "a"/);
    expect(check([{ name: 'a', ph: 'B', ts: 1, pid: 1, tid: 2 }, { name: 'x', ph: 'X', ts: 1.5, dur: 3, pid: 1, tid: 2 },
      { name: 'a', ph: 'E', ts: 2, pid: 1, tid: 2 }])[0]).toMatch(/E without an open B/);
    expect(check([{ name: 'a', ph: 'B', ts: 1, pid: 1, tid: 2 }, { name: 'a', ph: 'E', ts: 2, pid: 1, tid: 2 }])).toEqual([]);
    expect(check([{ name: 'a', ph: 'i', s: 't', ts: 5, pid: 1, tid: 2 }, { name: 'b', ph: 'i', s: 't', ts: 4, pid: 1, tid: 2 }])[0]).toMatch(/goes back/);
    expect(check([{ name: 'a', ph: 'i', s: 'x', ts: 5, pid: 1, tid: 2 }])[0]).toMatch(/instant scope/);
    expect(check([{ name: 'a', ph: 'X', ts: 1, dur: 1, pid: 1, tid: 3 }])[0]).toMatch(/thread 1\/3 .* has no thread_name/);
    expect(check([{ name: 'a', ph: 'X', ts: 1, dur: 1, pid: 9, tid: 2 }])[0]).toMatch(/tid 2 used with pid 1 and pid 9/);
    expect(check([{ name: 'a', ph: 'i', s: 'p', ts: 1, pid: 4 }])[0]).toMatch(/pid 4 .* has no process_name/);
    expect(check([{ name: 'a', ph: 'Q', ts: 1, pid: 1, tid: 2 }])[0]).toMatch(/unknown ph/);
    expect(traceEventProblems([])).toEqual(['not the JSON object form: no traceEvents array']);
  });
});

describe('read back', () => {
  it('the hold slices carry exactly analyze\'s episodes, at their acquire time, as long as they held the lock', () => {
    for (const [path, analysis] of [[fleetOut, fleetAnalysis], [handOut, handAnalysis]] as const) {
      const doc = readDoc(path);
      const origin = Number(doc.otherData.originNs);
      const { thread } = traceNames(doc);
      const held = doc.traceEvents.filter((e) => thread.get(`${String(e.pid)}/${String(e.tid)}`)?.startsWith('memory_lock held') && e.args?.episode);
      const byId = new Map(held.map((e) => [String((e.args!.episode as Record<string, unknown>).episodeId), e]));
      expect(held.length).toBe(byId.size); // one slice per episode
      expect([...byId.keys()].sort()).toEqual(analysis.episodes.map((e) => String(e.episodeId)).sort());
      for (const ep of analysis.episodes) {
        const e = byId.get(String(ep.episodeId))!;
        expect(e.args!.episode).toEqual(ep);
        if (Number(ep.acquireTsNs) === 0) {
          // began before observation: no acquire, the release stands for it (an instant)
          expect(e).toMatchObject({ ph: 'i', s: 't' });
          expect(e.name).toMatch(/began before observation$/);
          expect(toNs(e.ts as number) + origin).toBe(Number(ep.releaseTsNs));
          continue;
        }
        expect(e.ph).toBe('X');
        expect(toNs(e.ts as number) + origin).toBe(Number(ep.acquireTsNs));
        expect(toNs(e.dur as number)).toBe(Number(ep.releaseTsNs) - Number(ep.acquireTsNs));
      }
    }
  });

  it('every finding is an instant on its device\'s findings track, with its evidence object', () => {
    for (const [path, analysis] of [[fleetOut, fleetAnalysis], [handOut, handAnalysis]] as const) {
      const doc = readDoc(path);
      const origin = Number(doc.otherData.originNs);
      const { process, thread } = traceNames(doc);
      const marks = doc.traceEvents.filter((e) => e.cat === 'finding');
      expect(marks.length).toBe(analysis.findings.length);
      expect(analysis.findings.length).toBeGreaterThan(0);
      for (const f of analysis.findings) {
        const m = marks.find((e) => (e.args!.finding as Record<string, unknown>).findingId === f.findingId)!;
        expect(m).toMatchObject({ ph: 'i', s: 't' });
        expect(m.args!.finding).toEqual(f);
        expect(typeof (m.args!.finding as { evidence: unknown }).evidence).toBe('object');
        expect(toNs(m.ts as number) + origin).toBe(Number(f.tsNs));
        expect(thread.get(`${String(m.pid)}/${String(m.tid)}`)).toBe('findings');
        expect(process.get(m.pid as number)).toBe(`${String(f.hostname)} ${String(f.device)}${f.driver ? ` ${String(f.driver)}` : ''}`);
      }
    }
  });

  it('the hand-written episode: every track the issue names, with the events at their times', () => {
    const doc = readDoc(handOut);
    const origin = Number(doc.otherData.originNs);
    const { process, thread } = traceNames(doc);
    const pid = [...process].find(([, n]) => n === `host-a ${D} vfio-pci`)![0];
    const tracks = [...thread].filter(([k]) => k.startsWith(`${pid}/`)).map(([, n]) => n);
    expect(tracks).toEqual(['findings', 'triggers', 'memory_lock wait', 'memory_lock wait #2', 'memory_lock held', 'zap', 'DMABUF revoke',
      'move_notify dmabuf 11', 'move_notify dmabuf 12', 'power', 'reset', 'mappings']);
    const on = (track: string) => doc.traceEvents.filter((e) => e.pid === pid && thread.get(`${pid}/${String(e.tid)}`) === track && e.ph !== 'M')
      .map((e) => [e.name, (toNs(e.ts as number) + origin - 1e12) / 1000, e.dur === undefined ? undefined : toNs(e.dur as number) / 1000]);
    expect(on('triggers')).toEqual([['FLR', 100, 505]]);
    expect(on('memory_lock wait')).toEqual([['lock wait', 106, 4], ['lock wait', 550, 150]]);
    expect(on('memory_lock wait #2')).toEqual([['lock wait', 570, 250]]); // overlaps the wait above without nesting in it: a lane of its own
    expect(on('memory_lock held')).toEqual([['FLR', 110, 490], ['lock only', 700, 100], ['lock only', 820, 30]]);
    expect(on('zap')).toEqual([['zap BAR0-5', 120, 30]]);
    expect(on('DMABUF revoke')).toEqual([['revoke 2 DMABUFs', 160, 200]]);
    expect(on('move_notify dmabuf 11')).toEqual([['move_notify 2 importers', 170, 50]]);
    expect(on('move_notify dmabuf 12')).toEqual([['move_notify 1 importer', 230, 80]]);
    expect(on('power')).toEqual([['D0 → D3hot', 400, 10]]);
    expect(on('reset')).toEqual([['reset ret=0', 420, 100]]);
    expect(on('mappings').map((r) => r[0])).toEqual(['DeviceInfo', 'mmap BAR0 LEGACY (snapshot)', 'mmap BAR2 DMABUF', 'fault BAR0 ok']);
    // the task's own process: its trigger span, wait, hold and what it ran inside, nested on its thread
    const task = [...process].find(([, n]) => n === 'host-a qemu (pid 100)')![0];
    const taskSlices = doc.traceEvents.filter((e) => e.pid === task && e.ph === 'X').map((e) => e.name);
    expect(taskSlices).toEqual(['FLR', 'lock wait', 'FLR', 'zap BAR0-5', 'revoke 2 DMABUFs', 'move_notify 2 importers', 'move_notify 1 importer',
      'D0 → D3hot', 'reset ret=0']);
    expect([...thread].filter(([k]) => k.startsWith(`${task}/`)).map(([, n]) => n)).toEqual(['qemu 100']);
    // D3: the release of a write section that began before observation
    const d3 = [...process].find(([, n]) => n === `host-a ${D3} vfio-pci`)![0];
    const d3held = doc.traceEvents.filter((e) => e.pid === d3 && e.ph !== 'M' && thread.get(`${d3}/${String(e.tid)}`) === 'memory_lock held');
    expect(d3held.map((e) => [e.ph, e.name])).toEqual([['i', 'release: revoke, began before observation']]);
    expect(handAnalysis.episodes.some((e) => e.acquireTsNs === '0')).toBe(true);
    // the zap by a task that did not hold the lock: LOCK_NOT_HELD on D2
    const f = doc.traceEvents.find((e) => e.cat === 'finding' && (e.args!.finding as { device: string }).device === D2)!;
    expect(f.name).toBe('LOCK_NOT_HELD CRITICAL');
    expect((f.args!.finding as { evidence: { rule: string } }).evidence.rule).toBeTruthy();
  });
});

describe('stable', () => {
  it('the same trace as .pb (wire scans) and as .jsonl cut into other batches gives the same events, ids included', () => {
    const a = readDoc(fleetOut);
    const b = readDoc(fleetOutJsonl);
    expect(b.traceEvents.length).toBe(a.traceEvents.length);
    expect(b.traceEvents).toEqual(a.traceEvents);
    expect({ ...b.otherData, source: '' }).toEqual({ ...a.otherData, source: '' });
  });

  it('a second run writes the same bytes', async () => {
    const again = join(dir, 'hand-again.trace.json');
    expect((await analyze(handJsonl, '--export-trace', again)).code).toBe(0);
    const a = readFileSync(handOut, 'utf8').replace(/"source":"[^"]*"/, '');
    expect(readFileSync(again, 'utf8').replace(/"source":"[^"]*"/, '')).toBe(a);
  });
});

describe('bounded', () => {
  it('past --export-max-events the export fails with its reason, writes no file, and the analysis is still printed', async () => {
    const out = join(dir, 'too-big.trace.json');
    const r = await analyze(fleetPb, '--export-trace', out, '--export-max-events', '100');
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--export-trace .*too-big\.trace\.json: the timeline has more than 100 events \(--export-max-events 100\): not written; export a time range from the store/);
    expect(r.stdout).toMatch(/Revoke latency/);
    expect(existsSync(out)).toBe(false);
  });

  it('usage errors', async () => {
    expect((await analyze(handPb, '--export-trace', join(dir, 'x.json'), '--export-max-events', '0')).stderr).toMatch(/--export-max-events must be an integer 1\.\./);
    expect((await analyze(handPb, '--export-trace', join(dir, 'no-such-dir', 'x.json'))).code).toBe(2);
  });
});

describe('export-trace --from/--to times', () => {
  it('RFC 3339, epoch ms, now and now-DURATION; anything else is a clear error', async () => {
    const { wallTime } = await import('../services/cli/time.js');
    const parseWallTime = (t: string, name: string, nowMs: number) => wallTime(nowMs)(t, name);
    const now = Date.parse('2026-03-01T12:00:00Z');
    expect(parseWallTime('2026-03-01T11:00:00Z', '--from', now)).toBe(now - 3_600_000);
    expect(parseWallTime('2026-03-01T13:00:00.5+01:00', '--from', now)).toBe(now + 500);
    expect(parseWallTime('1700000000000', '--from', now)).toBe(1_700_000_000_000);
    expect(parseWallTime('now', '--to', now)).toBe(now);
    expect(parseWallTime('now-15m', '--from', now)).toBe(now - 900_000);
    expect(parseWallTime('now-30', '--from', now)).toBe(now - 30_000); // a bare number is seconds, as everywhere
    expect(() => parseWallTime('yesterday', '--from', now)).toThrow(/--from must be an RFC 3339 time.*got 'yesterday'/);
    expect(() => parseWallTime('now-2x', '--from', now)).toThrow(/--from must be a duration.*got '2x'/);
    expect(() => parseWallTime('99999999999999999', '--to', now)).toThrow(/out of range/);
    expect(() => parseWallTime('2026-03-01 12:00', '--to', now)).toThrow(/RFC 3339/);
  });
});
