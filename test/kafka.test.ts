// Fleet path against a real Apache Kafka broker (issue 4): simulated fleet → Kafka → correlate → store equals
// `analyze` on the same batches; SIGKILL mid-stream and restart gives the identical store; two correlators
// share the partitions; bad messages land in the DLQ with reasons.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import kafkajs from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { poisonBatch } from './support/poison.js';
import { runFleet } from '../services/pipeline/fleet.js';
import { Pipeline } from '../services/pipeline/pipeline.js';
import { KafkaEventSource } from '../services/transport/kafka/source.js';
import { analyzeBatches } from '../services/core/analysis.js';
import { v1, type EventBatch } from '../services/core/model.js';
import { hostBatches } from './support/kafka/fleet.js';
import { createKafkaSink } from '../services/transport/kafka/producer.js';
import { fleetBatches } from './support/kafka/fleet.js';
import { openStore } from '../services/store/index.js';
import { simulate } from '../collectors/simulator/index.js';
import { adminFor, exitCode, killChildren, normalise, readStore, releaseBroker, spawnCli, topicsFor, useBroker, type StoredResult, type TestBroker } from './support/kafka/env.js';

let broker: TestBroker;
const dirs: string[] = [];
const tmp = (name: string) => { const d = mkdtempSync(join(tmpdir(), `rs-kafka-${name}-`)); dirs.push(d); return d; };

beforeAll(async () => {
  broker = await useBroker();
  if (broker.unavailable) console.log(`SKIP kafka tests: ${broker.unavailable}`);
}, 300_000);
afterAll(async () => {
  killChildren();
  await releaseBroker(broker);
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const fleet = fleetBatches({ hosts: 12, cycles: 25, batchSize: 64, seed: 11 });
const expected = analyzeBatches(fleet);

function expectedRows(): Pick<StoredResult, 'episodes' | 'findings'> {
  const episodes = expected.episodes.map((e) => ({ episode_id: e.episodeId, hostname: e.hostname, boot_id: e.bootId, device: e.device,
    trigger: e.trigger, acquire_ts_ns: String(e.acquireTsNs), release_ts_ns: String(e.releaseTsNs), revoke: e.revoke ? 1 : 0,
    hold_ns: String(e.holdNs), revoke_ns: String(e.revokeNs), zap_ns: String(e.zapNs), zap_count: e.zapCount,
    dmabuf_count: e.dmabufCount, complete: e.complete ? 1 : 0 }));
  const findings = expected.findings.map((f) => ({ finding_id: f.findingId, kind: f.kind, severity: f.severity, hostname: f.hostname,
    device: f.device, episode_id: f.episodeId, ts_ns: String(f.tsNs), inconclusive: f.inconclusive ? 1 : 0 }));
  const byId = (k: string) => (a: Record<string, unknown>, b: Record<string, unknown>) => String(a[k]).localeCompare(String(b[k]));
  return { episodes: episodes.sort(byId('episode_id')), findings: findings.sort(byId('finding_id')) };
}

async function produce(batches: EventBatch[], topics: ReturnType<typeof topicsFor>, partitions = 4): Promise<void> {
  const sink = await createKafkaSink({ brokers: [broker.bootstrap], ...topics, partitions });
  try {
    await Promise.all(batches.map((b) => sink.send([{ key: b.host!.hostname!, value: v1.EventBatch.encode(b).finish() }])));
  } finally { await sink.close(); }
}

function correlateArgs(topics: ReturnType<typeof topicsFor>, dataDir: string, extra: string[] = []): string[] {
  return ['correlate', '--kafka', broker.bootstrap, '--data-dir', dataDir, '--group', topics.groupId, '--topic', topics.eventsTopic,
    '--findings-topic', topics.findingsTopic, '--dlq-topic', topics.dlqTopic, '--partitions', '4', ...extra];
}

describe('fleet → Kafka → correlate → store', () => {
  it('stores the same episodes and findings as analyze on the same batches', async (ctx) => {
    if (broker.unavailable) return ctx.skip();
    expect(expected.findings.length).toBeGreaterThan(0);
    const topics = topicsFor('equal');
    await produce(fleet, topics);
    const dataDir = tmp('equal');
    const cli = spawnCli(correlateArgs(topics, dataDir, ['--drain', '--commit-interval', '200ms']));
    expect(await exitCode(cli, 90_000), cli.output()).toBe(0);
    const stored = await readStore(dataDir);
    const want = expectedRows();
    expect(normalise(stored).episodes).toEqual(want.episodes);
    expect(normalise(stored).findings).toEqual(want.findings);
    const events = fleet.reduce((n, b) => n + b.events!.length, 0);
    expect(stored.distinctEvents).toBe(events);
    // host health: one host per hostname with every event counted, lag 0 at the end
    const last = new Map(stored.health.map((h) => [h.hostname, h]));
    expect(last.size).toBe(12);
    for (const h of last.values()) { expect(Number(h.lost)).toBe(0); expect(Number(h.lag)).toBe(0); }
    // findings were also published, as protobuf Finding keyed by hostname
    const kafka = adminFor(broker.bootstrap);
    const admin = kafka.admin(); await admin.connect();
    const offsets = await admin.fetchTopicOffsets(topics.findingsTopic);
    await admin.disconnect();
    expect(offsets.reduce((n, o) => n + Number(o.high), 0)).toBe(expected.findings.length);
  }, 240_000);
});

async function committed(topics: ReturnType<typeof topicsFor>): Promise<number> {
  const admin = adminFor(broker.bootstrap).admin(); await admin.connect();
  try {
    const r = await admin.fetchOffsets({ groupId: topics.groupId, topics: [topics.eventsTopic] });
    return r[0].partitions.reduce((n, p) => n + Math.max(0, Number(p.offset)), 0);
  } catch {
    return 0; // coordinator loading or moving: ask again later
  } finally { await admin.disconnect(); }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('crash and sharing', () => {
  it('SIGKILL mid-stream, restart: the identical store, no duplicates', async (ctx) => {
    if (broker.unavailable) return ctx.skip();
    const topics = topicsFor('kill');
    const big = fleetBatches({ hosts: 16, cycles: 60, batchSize: 32, seed: 5 });
    const want = analyzeBatches(big);
    const half = Math.floor(big.length / 2);
    await produce(big.slice(0, half), topics);
    const dataDir = tmp('kill');
    // checkpoints every 200 ms: the restart restores them and replays only from there to the commit
    const first = spawnCli(correlateArgs(topics, dataDir, ['--commit-interval', '100ms', '--checkpoint-interval', '200ms', '--quiet']));
    // keep producing while it runs; kill it once it has committed part of the stream
    const sink = await createKafkaSink({ brokers: [broker.bootstrap], ...topics, partitions: 4 });
    let sent = half;
    let killedAt = -1;
    for (let i = 0; sent < big.length; i++) {
      const chunk = big.slice(sent, sent + 20);
      await Promise.all(chunk.map((b) => sink.send([{ key: b.host!.hostname!, value: v1.EventBatch.encode(b).finish() }])));
      sent += chunk.length;
      if (killedAt < 0 && (await committed(topics)) > 0) {
        first.kill('SIGKILL');
        killedAt = sent;
      }
      await sleep(50);
    }
    await sink.close();
    if (killedAt < 0) { // it was faster than the producer: kill it anyway, the restart must still be exact
      first.kill('SIGKILL');
    }
    expect(await first.exited).toBe(null); // killed by a signal
    const before = await committed(topics);
    const second = spawnCli(correlateArgs(topics, dataDir, ['--drain', '--commit-interval', '100ms']));
    expect(await exitCode(second, 120_000), second.output()).toBe(0);
    console.log(`kill: restart summary ${second.output().trim().split('\n').filter((l) => l.startsWith('{')).pop()}`);
    const stored = await readStore(dataDir);
    const w = { episodes: want.episodes.length, findings: want.findings.length };
    console.log(`kill: committed ${before}/${big.length} messages at SIGKILL+restart; ${w.episodes} episodes, ${w.findings} findings; ` +
      `episode rows before merge ${stored.episodeRows}`);
    expect(stored.episodes.length).toBe(w.episodes);
    expect(new Set(stored.episodes.map((e) => e.episode_id))).toEqual(new Set(want.episodes.map((e) => e.episodeId)));
    expect(new Set(stored.findings.map((f) => f.finding_id))).toEqual(new Set(want.findings.map((f) => f.findingId)));
    expect(stored.findings.length).toBe(w.findings);
    expect(stored.distinctEvents).toBe(big.reduce((n, b) => n + b.events!.length, 0));
    expect(stored.events).toBe(stored.distinctEvents); // FINAL: one row per (host, boot, seq)
  }, 300_000);

  it('two correlators in one group share the partitions and together store what one would', async (ctx) => {
    if (broker.unavailable) return ctx.skip();
    const topics = topicsFor('pair');
    const big = fleetBatches({ hosts: 16, cycles: 40, batchSize: 32, seed: 9 });
    const want = analyzeBatches(big);
    await produce(big.slice(0, 1), topics); // creates the topics
    const dirA = tmp('pairA'); const dirB = tmp('pairB'); const dirC = tmp('pairC');
    const a = spawnCli(correlateArgs(topics, dirA, ['--commit-interval', '100ms', '--quiet']));
    const b = spawnCli(correlateArgs(topics, dirB, ['--commit-interval', '100ms', '--quiet']));
    const admin = adminFor(broker.bootstrap).admin(); await admin.connect();
    try {
      for (let i = 0; ; i++) { // both members joined and each holds partitions
        const g = (await admin.describeGroups([topics.groupId])).groups[0];
        if (g.state === 'Stable' && g.members.length === 2) break;
        if (i > 300) throw new Error(`group never had 2 members:\n${a.output()}\n${b.output()}`);
        await sleep(100);
      }
    } finally { await admin.disconnect(); }
    await produce(big.slice(1), topics);
    for (let i = 0; (await committed(topics)) < big.length; i++) {
      if (i > 600) throw new Error(`not all committed:\n${a.output()}\n${b.output()}`);
      await sleep(100);
    }
    a.kill('SIGTERM'); b.kill('SIGTERM');
    expect(await exitCode(a, 60_000), a.output()).toBe(0);
    expect(await exitCode(b, 60_000), b.output()).toBe(0);
    // end of input: a third member replays (outputs suppressed up to the commits) and finishes open state
    const c = spawnCli(correlateArgs(topics, dirC, ['--drain']));
    expect(await exitCode(c, 120_000), c.output()).toBe(0);
    console.log([a, b, c].map((x) => x.output().trim().split("\n").slice(-3).join(" / ")).join("\n"));
    const sa = await readStore(dirA); const sb = await readStore(dirB); const sc = await readStore(dirC); // chDB: one dir per process at a time
    console.log(`pair: A stored ${sa.episodes.length} episodes, B ${sb.episodes.length}, finisher ${sc.episodes.length}; want ${want.episodes.length}`);
    expect(sa.episodes.length).toBeGreaterThan(0);
    expect(sb.episodes.length).toBeGreaterThan(0);
    const all = [...sa.episodes, ...sb.episodes, ...sc.episodes];
    const episodes = new Map(all.map((e) => [e.episode_id, e]));
    const findings = new Map([...sa.findings, ...sb.findings, ...sc.findings].map((f) => [f.finding_id, f]));
    expect(new Set(episodes.keys())).toEqual(new Set(want.episodes.map((e) => e.episodeId)));
    expect(new Set(findings.keys())).toEqual(new Set(want.findings.map((f) => f.findingId)));
    // partitions were split, not duplicated: A and B stored disjoint episodes
    const inA = new Set(sa.episodes.map((e) => e.episode_id));
    expect(sb.episodes.filter((e) => inA.has(e.episode_id)).length).toBe(0);
  }, 300_000);

  it('a restart resumes from the stored checkpoints: only messages after them are read again', async (ctx) => {
    if (broker.unavailable) return ctx.skip();
    const topics = topicsFor('ckpt');
    const big = fleetBatches({ hosts: 16, cycles: 40, batchSize: 32, seed: 21 });
    const want = analyzeBatches(big);
    const cut = Math.floor(big.length * 2 / 3);
    await produce(big.slice(0, cut), topics);
    const dataDir = tmp('ckpt');
    const first = spawnCli(correlateArgs(topics, dataDir, ['--commit-interval', '100ms', '--checkpoint-interval', '0', '--quiet']));
    for (let i = 0; (await committed(topics)) < cut; i++) {
      if (i > 600) throw new Error(`not all committed:\n${first.output()}`);
      await sleep(100);
    }
    await sleep(300); // a commit or two more: nothing new, so no checkpoint moves
    first.kill('SIGKILL');
    expect(await first.exited).toBe(null);
    const { store, connection } = await openStore({ dataDir });
    const cps = await (await connection.client.query({ format: 'JSONEachRow',
      query: `SELECT partition, max(offset) AS offset FROM ${store.schema.database}.correlator_checkpoints
        WHERE group = {g:String} AND topic = {t:String} GROUP BY partition ORDER BY partition`,
      query_params: { g: topics.groupId, t: topics.eventsTopic } })).json<{ partition: number; offset: string }>();
    await store.close();
    // every partition checkpointed at its committed end: the restart has nothing to replay
    expect(cps.length).toBe(4);
    expect(cps.reduce((n, c) => n + Number(c.offset), 0)).toBe(cut);
    await produce(big.slice(cut), topics);
    const second = spawnCli(correlateArgs(topics, dataDir, ['--drain', '--commit-interval', '100ms']));
    expect(await exitCode(second, 120_000), second.output()).toBe(0);
    const summary = JSON.parse(second.output().trim().split('\n').filter((l) => l.startsWith('{')).pop()!) as
      { messages: number; replayedMessages: number; restored: number };
    console.log(`checkpoint restart: ${JSON.stringify(summary)} (without checkpoints it would replay ${cut})`);
    expect(summary.restored).toBe(4);
    expect(summary.replayedMessages).toBe(0);
    expect(summary.messages).toBe(big.length - cut);
    const stored = await readStore(dataDir);
    expect(new Set(stored.episodes.map((e) => e.episode_id))).toEqual(new Set(want.episodes.map((e) => e.episodeId)));
    expect(new Set(stored.findings.map((f) => f.finding_id))).toEqual(new Set(want.findings.map((f) => f.findingId)));
    expect(stored.episodes.length).toBe(want.episodes.length);
    expect(stored.distinctEvents).toBe(big.reduce((n, b) => n + b.events!.length, 0));
    // host counters came back with the checkpoint: every event of every host counted once, nothing lost
    const last = new Map(stored.health.map((h) => [h.hostname, h]));
    const perHost = new Map<string, number>();
    for (const b of big) perHost.set(b.host!.hostname!, (perHost.get(b.host!.hostname!) ?? 0) + b.events!.length);
    for (const [h, n] of perHost) { expect(Number(last.get(h)?.events), h).toBe(n); expect(Number(last.get(h)?.lost)).toBe(0); }
  }, 300_000);
});

describe('host health lag', () => {
  it('each host\'s lag is its own partition\'s, and 0 once that partition is read', async (ctx) => {
    if (broker.unavailable) return ctx.skip();
    const topics = topicsFor('lag');
    // kafkajs' default partitioner (the sink's): host A alone in one partition, busy hosts in the other
    const partitionOf = kafkajs.Partitioners.DefaultPartitioner();
    const meta = [0, 1].map((p) => ({ partitionId: p, leader: 1 }));
    const where = (h: number) => partitionOf({ topic: topics.eventsTopic, partitionMetadata: meta as never,
      message: { key: hostBatches(h, { hosts: 1, cycles: 1 })[0]!.host!.hostname!, value: null } });
    const hosts = Array.from({ length: 20 }, (_, h) => h);
    const lone = hosts.find((h) => where(h) === 0)!;
    const busy = hosts.filter((h) => where(h) === 1).slice(0, 3);
    expect(lone).toBeDefined();
    expect(busy.length).toBe(3);
    const loneBatches = hostBatches(lone, { hosts: 1, cycles: 2, batchSize: 1_000_000, seed: 2 });
    const busyBatches = busy.flatMap((h) => hostBatches(h, { hosts: 1, cycles: 400, batchSize: 4, seed: 2 }));
    await produce([...loneBatches, ...busyBatches], topics, 2);
    const dataDir = tmp('lag');
    const { store } = await openStore({ dataDir });
    try {
      // A health sample after every delivery: A's is taken right after its one batch, while the busy partition,
      // fetched at the same time, is still being read
      const source = new KafkaEventSource({ brokers: [broker.bootstrap], ...topics, partitions: 2, drain: true });
      await new Pipeline({ source, store, healthIntervalMs: 0, ackIntervalMs: 50 }).run();
    } finally { await store.close(); }
    const stored = await readStore(dataDir);
    const loneName = loneBatches[0]!.host!.hostname!;
    const of = (name: string) => stored.health.filter((h) => h.hostname === name).map((h) => Number(h.lag));
    // A's partition holds only A's batch: once it is read, nothing of A's partition is unread, whatever the busy
    // partition's backlog (the total lag, which A's samples carried before, was 102 in a failing run)
    console.log(`lag: lone host samples ${JSON.stringify(of(loneName))}; busy partition ${busyBatches.length} messages, ` +
      `first samples ${JSON.stringify(of(busyBatches[0]!.host!.hostname!).slice(0, 6))}`);
    expect(of(loneName).length).toBeGreaterThan(0);
    expect(of(loneName).every((l) => l === 0)).toBe(true);
    for (const h of busy) {
      const lags = of(hostBatches(h, { hosts: 1, cycles: 1 })[0]!.host!.hostname!);
      expect(lags.every((l) => l <= busyBatches.length)).toBe(true);
      expect(lags[lags.length - 1]).toBe(0); // caught up: the last sample says so
    }
  }, 180_000);
});

describe('simulate --kafka', () => {
  it('produces the simulated fleet like collectors do; correlate stores what analyze finds in the same fleet', async (ctx) => {
    if (broker.unavailable) return ctx.skip();
    const topics = topicsFor('simulate');
    const sim = spawnCli(['simulate', '--kafka', broker.bootstrap, '--hosts', '3', '--duration', '20s', '--seed', '4'],
      { REVOKESCOPE_KAFKA_EVENTS_TOPIC: topics.eventsTopic, REVOKESCOPE_KAFKA_PARTITIONS: '4' });
    expect(await exitCode(sim, 120_000), sim.output()).toBe(0);
    const { batches } = simulate({ hosts: 3, durationNs: 20e9, seed: 4 });
    expect(sim.output()).toContain(`produced ${batches.length} batches of 3 hosts to ${topics.eventsTopic}`);
    const want = analyzeBatches(batches);
    const dataDir = tmp('simulate');
    const cli = spawnCli(correlateArgs(topics, dataDir, ['--drain']));
    expect(await exitCode(cli, 120_000), cli.output()).toBe(0);
    const stored = await readStore(dataDir);
    expect(new Set(stored.episodes.map((e) => e.episode_id))).toEqual(new Set(want.episodes.map((e) => e.episodeId)));
    expect(new Set(stored.findings.map((f) => f.finding_id))).toEqual(new Set(want.findings.map((f) => f.findingId)));
    expect(stored.distinctEvents).toBe(batches.reduce((n, b) => n + b.events!.length, 0));
  }, 240_000);
});

function kcatJson(topic: string): { key: string | null; payload: string | null; headers: string[] | null }[] {
  const out = execFileSync('kcat', ['-b', broker.bootstrap, '-C', '-t', topic, '-e', '-q', '-J'], { encoding: 'utf8', timeout: 60_000 });
  return out.split('\n').filter(Boolean).map((l) => JSON.parse(l));
}

function haveTool(name: string): boolean {
  try { execFileSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' }); return true; } catch { return false; }
}

describe('bad messages and interop', () => {
  it('corrupt, truncated, wrong-schema and absurd messages go to the DLQ with reasons; the rest is correlated', async (ctx) => {
    if (broker.unavailable) return ctx.skip();
    if (!haveTool('kcat')) {
      if (process.env.CI === 'true') throw new Error('kcat is required in CI (apt-get install kcat)');
      console.log('SKIP: kcat not installed (apt-get install kcat)'); return ctx.skip();
    }
    const topics = topicsFor('dlq');
    const good = hostBatches(1, { hosts: 1, cycles: 10, batchSize: 32, seed: 3 });
    const host = good[0].host!.hostname!;
    const valid = v1.EventBatch.encode(good[0]).finish();
    const absurd = structuredClone(good[1]);
    absurd.events![0] = { ...absurd.events![0], zap: { start: 0, length: 1, durationNs: 9e17, target: 1 }, lockAcquire: undefined,
      lockRelease: undefined, barFault: undefined, barMmap: undefined, trigger: undefined, deviceInfo: undefined, dmabufRevoke: undefined,
      moveNotify: undefined, barMunmap: undefined };
    const finding = v1.Finding.encode({ findingId: 'x', kind: 1, hostname: host }).finish();
    const bad: { value: Uint8Array; why: RegExp }[] = [
      { value: Buffer.from([0xff, 0xff, 0xff, 0xff, 0x0f, 0x01, 0x02]), why: /corrupt protobuf/ },
      { value: valid.subarray(0, Math.floor(valid.length / 2)), why: /corrupt protobuf/ },
      { value: finding, why: /invalid batch/ },
      { value: v1.EventBatch.encode(absurd).finish(), why: /invalid batch.*absurd duration/ },
      { value: new Uint8Array(0), why: /empty message/ },
      // protobufjs + validateBatch accept it; the wire reader (every path's) does not: it must not stall the partition
      { value: poisonBatch(host), why: /invalid batch: events\[0\]\.barFault\.bar: wire type 5/ },
    ];
    const sink = await createKafkaSink({ brokers: [broker.bootstrap], ...topics, partitions: 4 });
    await sink.send([{ key: host, value: valid }]);
    for (const b of bad) await sink.send([{ key: host, value: b.value }]);
    for (const g of good.slice(1)) await sink.send([{ key: host, value: v1.EventBatch.encode(g).finish() }]);
    // a good batch under the wrong key would be correlated in another host's partition
    await sink.send([{ key: 'someone-else', value: v1.EventBatch.encode(good[2]).finish() }]);
    await sink.close();
    const dataDir = tmp('dlq');
    const cli = spawnCli(correlateArgs(topics, dataDir, ['--drain']));
    expect(await exitCode(cli, 90_000), cli.output()).toBe(0);
    const dlq = kcatJson(topics.dlqTopic);
    const reasons = dlq.map((m) => { const h = m.headers ?? []; return h[h.indexOf('reason') + 1]; });
    expect(dlq.length, reasons.join('\n')).toBe(bad.length + 1);
    for (const b of bad) expect(reasons.some((r) => b.why.test(r)), `${b.why} in\n${reasons.join('\n')}`).toBe(true);
    expect(reasons.some((r) => /message key 'someone-else'/.test(r))).toBe(true);
    for (const m of dlq) { const h = m.headers ?? []; expect(h).toContain('source-offset'); }
    const stored = await readStore(dataDir);
    const want = analyzeBatches(good);
    expect(stored.episodes.length).toBe(want.episodes.length);
    // DLQ counts for the Collector health dashboard, by reason class
    const { store, connection } = await openStore({ dataDir });
    const counts = await (await connection.client.query({ format: 'JSONEachRow',
      query: `SELECT reason, sum(count) AS n FROM ${store.schema.database}.dlq_events WHERE topic = {t:String} GROUP BY reason ORDER BY reason`,
      query_params: { t: topics.eventsTopic } })).json<{ reason: string; n: string }>();
    await store.close();
    expect(counts.map((c) => [c.reason, Number(c.n)])).toEqual([['corrupt protobuf', 4], ['invalid batch', 3]]); // a Finding does not parse as an EventBatch
  }, 180_000);

  it('a drain that cannot make progress fails instead of exiting 0 with the partition half read', async (ctx) => {
    if (broker.unavailable) return ctx.skip();
    const topics = topicsFor('stall');
    const batches = hostBatches(1, { hosts: 1, cycles: 4, batchSize: 16, seed: 9 });
    const sink = await createKafkaSink({ brokers: [broker.bootstrap], ...topics, partitions: 1 });
    for (const b of batches) await sink.send([{ key: b.host!.hostname!, value: v1.EventBatch.encode(b).finish() }]);
    await sink.close();
    // a store that has been closed: every write fails (the fault is real: chDB refuses a closed session)
    const { store } = await openStore({ dataDir: tmp('stall') });
    await store.close();
    const fleet = runFleet({ brokers: [broker.bootstrap], ...topics, store, drain: true, drainIdleMs: 3_000 });
    const err = await fleet.done.then(() => undefined, (e: unknown) => e as Error);
    expect(err?.message).toMatch(/drain stalled: 10 messages unread/);
    expect(fleet.pipeline.stats.done).toBe(false);
  }, 120_000);

  it('kcat consumes a batch we produced and protoc --decode reads it with our .proto', async (ctx) => {
    if (broker.unavailable) return ctx.skip();
    for (const t of ['kcat', 'protoc']) {
      if (!haveTool(t)) {
        if (process.env.CI === 'true') throw new Error(`${t} is required in CI (apt-get install kcat protobuf-compiler)`);
        console.log(`SKIP: ${t} not installed`); return ctx.skip();
      }
    }
    const topics = topicsFor('interop');
    const batch = hostBatches(2, { hosts: 1, cycles: 1, batchSize: 8, seed: 1 })[0];
    const sink = await createKafkaSink({ brokers: [broker.bootstrap], ...topics, partitions: 1 }); // zstd-compressed
    await sink.send([{ key: batch.host!.hostname!, value: v1.EventBatch.encode(batch).finish() }]);
    await sink.close();
    const raw = execFileSync('kcat', ['-b', broker.bootstrap, '-C', '-t', topics.eventsTopic, '-c', '1', '-e', '-q', '-f', '%s'], { timeout: 60_000 });
    const file = join(tmp('interop'), 'batch.pb');
    writeFileSync(file, raw);
    const text = execFileSync('sh', ['-c', `protoc --decode revokescope.v1.EventBatch -I proto proto/revokescope/v1/events.proto < '${file}'`],
      { encoding: 'utf8', cwd: join(import.meta.dirname, '..') });
    expect(text).toContain(`hostname: "${batch.host!.hostname}"`);
    expect(text).toContain(`first_seq: ${batch.firstSeq || 0}`.replace('first_seq: 0', 'events {'));
    expect((text.match(/^events \{/gm) ?? []).length).toBe(batch.events!.length);
  }, 120_000);
});
