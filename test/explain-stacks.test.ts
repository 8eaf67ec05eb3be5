// Kernel stacks in `revokescope explain` (issue 17): a finding of a real 6.12 lab capture taken with `collect --stacks`
// (test/fixtures/kernel/6.12/raw-ftrace-field-who.txt, replayed as the agent decoded it) is explained from the trace and
// from the store (chDB, filled by `revokescope run --input`, the stacks in kernel_stacks) and over the API: all show the
// same frames, the capture's own. A hand-built host names a stack whose frames never came: explain says it is unknown.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { replayRaw } from '../collectors/agent/replay.js';
import { run as explainRun } from '../services/cli/commands/explain.js';
import { analyzeBatches } from '../services/core/analysis.js';
import { FindingKind, type Episode, type EventBatch, type Finding } from '../services/core/model.js';
import { explain, type Explanation } from '../services/report/explain.js';
import { explainInputFromBatches, explainInputFromStore } from '../services/report/explain-input.js';
import { openStore, type OpenStore } from '../services/store/index.js';
import { readFindingWindow } from '../services/store/finding-window.js';
import { writeTrace } from '../services/trace/index.js';
import { tempDir } from './store-fixtures.js';
import { startApi, type TestApi } from './support/api-server.js';
import { Capture } from './support/capture.js';
import { Backing, TraceBuilder, TriggerKind } from './support/trace-builder.js';

const CLI = 'dist/services/cli/main.js';
const FIX = join(import.meta.dirname, 'fixtures/kernel/6.12');
const tmp = tempDir('revokescope-explain-stacks-');
const DEV = '0000:3b:00.0';
/** The hand-built host's stacks: the acquire's comes in the batch's table, the fault's never does. */
const KNOWN = 0x1234_5678_9abc, MISSING = 0x0bad_0000_5eed;
const KNOWN_FRAMES = ['vfio_pci_zap_and_down_write_memory_lock', 'vfio_basic_config_write', 'vfio_pci_config_rw'];

/** A 6.12 host: a MEM_DISABLE write section, then a fault on the disabled BAR (FAULT_WHILE_REVOKED, made on the fault,
 * outside an episode). */
function handBatches(): EventBatch[] {
  const b = new TraceBuilder('6.12', 'host-hand', 'boot-hand');
  b.info(0, DEV).mmap(1, DEV, 7, { snapshot: true, backing: Backing.LEGACY });
  b.trigger(1000, DEV, TriggerKind.MEM_DISABLE).acquire(1010, DEV);
  b.events[b.events.length - 1]!.stackId = KNOWN;
  b.zap(1020, DEV).release(1100, DEV).triggerEnd(1105, DEV, TriggerKind.MEM_DISABLE).fault(2000, DEV, 7, 0, true);
  b.events[b.events.length - 1]!.stackId = MISSING;
  const batches = b.batches(64);
  batches[0]!.stacks = [{ id: KNOWN, frames: KNOWN_FRAMES }];
  return batches;
}

function cli(...args: string[]) {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 180_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const withoutSource = (x: Explanation): unknown => ({ ...x, window: { ...x.window, source: '' } });

let lab: EventBatch[];
let hand: EventBatch[];
let labStacks: Map<number, string[]>;
let findings: Finding[];
let episodes: Map<string, Episode>;
let trace: string;
let opened: OpenStore;
let api: TestApi;

const fromTrace = (f: Finding): Explanation => explain(explainInputFromBatches([...lab, ...hand], f, episodes.get(f.episodeId) ?? null, 'trace'));
async function fromStore(f: Finding): Promise<Explanation> {
  const w = await readFindingWindow(opened.reader, f.findingId);
  expect(w, f.findingId).toBeDefined();
  return explain(explainInputFromStore(w!, 'store'));
}
const labFinding = (): Finding => {
  const f = findings.find((g) => g.hostname === 'lab' && g.kind === FindingKind.REDUNDANT_ZAP);
  expect(f, 'the capture\'s REDUNDANT_ZAP (docs/kernel-lab: the second memory-off write in a row)').toBeDefined();
  return f!;
};
const handFinding = (): Finding => {
  const f = findings.find((g) => g.hostname === 'host-hand' && g.kind === FindingKind.FAULT_WHILE_REVOKED);
  expect(f).toBeDefined();
  return f!;
};

beforeAll(async () => {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npm run build\` first`);
  lab = replayRaw(readFileSync(join(FIX, 'raw-ftrace-field-who.txt'), 'utf8'), { hostname: 'lab', bootId: 'who' }).batches;
  labStacks = new Map(lab.flatMap((b) => b.stacks ?? []).map((k) => [Number(k.id), k.frames ?? []]));
  hand = handBatches();
  const a = analyzeBatches([...lab, ...hand]);
  findings = a.findings;
  episodes = new Map(a.episodes.map((e) => [e.episodeId, e]));
  trace = join(tmp.dir, 'stacks.pb');
  await writeTrace(trace, [...lab, ...hand]);
  const data = join(tmp.dir, 'data');
  const ingest = cli('run', '--input', trace, '--no-api', '--data-dir', data);
  expect(ingest.code, ingest.stderr).toBe(0);
  opened = await openStore({ dataDir: data });
  api = await startApi(opened.connection.client);
}, 300_000);

afterAll(async () => {
  await api?.app.close();
  await opened?.store.close();
  tmp.remove();
});

describe('explain: kernel stacks of a 6.12 lab capture (collect --stacks, ftrace)', () => {
  it('names the finding\'s stack with the capture\'s frames, innermost first, and every step\'s stack', () => {
    const f = labFinding();
    const x = fromTrace(f);
    const id = Number((JSON.parse(f.evidence) as { stackId: number }).stackId);
    expect(id).toBeGreaterThan(0);
    expect(x.timeline.find((s) => s.finding)!.stackId).toBe(id);
    // a PCI_COMMAND write through the config region: the zap's caller, then vfio-pci's config write path
    expect(x.stacks[String(id)]).toEqual(labStacks.get(id));
    expect(x.stacks[String(id)]!.slice(0, 3)).toEqual(['vfio_pci_zap_and_down_write_memory_lock', 'vfio_basic_config_write', 'vfio_pci_config_rw']);
    // every stack the explanation names is one the capture sent, with its frames (none missing in this capture)
    const named = [...x.timeline.map((s) => s.stackId), x.episode?.acquireStackId ?? null].filter((s): s is number => s !== null);
    expect(named.length).toBeGreaterThan(1);
    expect(Object.keys(x.stacks).map(Number).sort()).toEqual([...new Set(named)].sort());
    for (const s of named) expect(x.stacks[String(s)], String(s)).toEqual(labStacks.get(s));
    expect(x.episode!.acquireStackId).not.toBeNull();
    expect(x.stacks[String(x.episode!.acquireStackId)]![0]).toMatch(/^vfio_pci_/);
  });

  it('shows the same frames from the store (kernel_stacks) and over the API as from the trace', async () => {
    const f = labFinding();
    const t = fromTrace(f), s = await fromStore(f);
    expect(Object.keys(s.stacks).length).toBeGreaterThan(0);
    expect(s.stacks).toEqual(t.stacks);
    expect(s.timeline.map((x) => x.stackId)).toEqual(t.timeline.map((x) => x.stackId));
    expect(withoutSource(s)).toEqual(withoutSource(t));
    const r = await fetch(`${api.url}/api/v1/findings/${f.findingId}/explain`);
    expect(r.status).toBe(200);
    const body = await r.json() as Explanation;
    expect(body.stacks).toEqual(t.stacks);
    expect(withoutSource(body)).toEqual(withoutSource(s));
  });

  it('the table prints each stack once, under the step that first names it', async () => {
    const f = labFinding();
    const x = fromTrace(f);
    const out = new Capture(), err = new Capture();
    expect(await explainRun([f.findingId, '--input', trace], { stdout: out, stderr: err }), err.text).toBe(0);
    const lines = out.text.split('\n');
    const firstStep = new Map<number, number>();
    for (const s of x.timeline) if (s.stackId !== null && !firstStep.has(s.stackId)) firstStep.set(s.stackId, s.step);
    expect(firstStep.size).toBeGreaterThan(0);
    for (const [id, step] of firstStep) {
      const at = lines.findIndex((l) => l === `        stack ${id}:`);
      expect(at, `stack ${id}`).toBeGreaterThan(0);
      expect(lines.filter((l) => l.includes(`stack ${id}`))).toHaveLength(1);
      expect(lines[at - 1]).toMatch(new RegExp(`^  [▶│ ] ${step} `));
      expect(lines[at + 1]!.trim()).toBe(x.stacks[String(id)]![0]);
    }
    expect(out.text).toContain('          vfio_pci_zap_and_down_write_memory_lock\n          vfio_basic_config_write\n');
  });
});

describe('explain: a stack whose frames never came', () => {
  it('says unknown for it, from the trace and from the store, and shows the one that came', async () => {
    const f = handFinding();
    expect((JSON.parse(f.evidence) as { stackId: number }).stackId).toBe(MISSING);
    for (const x of [fromTrace(f), await fromStore(f)]) {
      // a fault outside an episode: the write section's acquire is a step of its timeline
      expect(x.timeline.find((s) => s.finding)!.stackId).toBe(MISSING);
      expect(x.timeline.find((s) => s.event === 'lockAcquire')!.stackId).toBe(KNOWN);
      expect(x.stacks).toEqual({ [String(KNOWN)]: KNOWN_FRAMES, [String(MISSING)]: null });
    }
    const out = new Capture(), err = new Capture();
    expect(await explainRun([f.findingId, '--input', trace], { stdout: out, stderr: err }), err.text).toBe(0);
    expect(out.text).toContain(`        stack ${MISSING}: unknown (its frames never arrived)`);
    expect(out.text).toContain(`        stack ${KNOWN}:\n          vfio_pci_zap_and_down_write_memory_lock\n`);
  });
});
