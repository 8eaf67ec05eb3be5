// The soak test (issue 16; DESIGN §8): the Kafka pipeline through everything that goes wrong in one run, bounded in
// time (minutes), ending with the store equal to `analyze` of the same input. In one run:
//   - collectors (the agent's output stage: CollectorOutput + DiskSpool + the Kafka sink) keep producing;
//   - the correlator (`revokescope correlate`, a child process) is SIGKILLed twice, each time restarted;
//   - the broker is stopped and restarted (same data) while the collectors produce and the correlator consumes;
//   - a poison message (bytes protobufjs + validateBatch accept, the wire reader does not) sits in a host's stream;
//   - an out-of-order burst: one batch whose events come in descending ts order;
//   - one collector's spool is on a small tmpfs that fills up during the outage (ENOSPC: its batches are lost,
//     counted into `dropped`, the seq gap stays). Without root (no tmpfs), a size-bounded spool instead, said so.
// At the end a last correlator drains the topic; the store must hold exactly what `revokescope analyze --lenient`
// finds in the topic's messages (episodes and findings row for row; every event once; nothing lost or doubled);
// the poison is dead-lettered with its reason and offset; the drops are in `dropped` and in host health.
// Uses a broker of its own (it is restarted). The figures are printed (docs/RELIABILITY.md quotes them).
import { appendFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CollectorOutput, type OutputFailure } from '../collectors/agent/spool-output.js';
import { DiskSpool } from '../collectors/agent/spool.js';
import { run as analyze } from '../services/cli/commands/analyze.js';
import { v1, type Event, type EventBatch } from '../services/core/model.js';
import { createKafkaSink, type KafkaEventSink } from '../services/transport/kafka/producer.js';
import { Capture } from './support/capture.js';
import { start, stop } from './support/kafka/broker.js';
import {
  analyzeJsonRows, committedOffsets, exitCode, killChildren, normalise, readStore, readTopicMessages, releaseBroker, spawnCli,
  topicsFor, useBroker, type TestBroker,
} from './support/kafka/env.js';
import { hostBatches } from './support/kafka/fleet.js';
import { poisonBatch } from './support/poison.js';
import { mountTmpfs, type Tmpfs } from './support/tmpfs.js';
import { lengthPrefixed } from '../bench/fuzz-inputs.js';

let broker: TestBroker;
const dirs: string[] = [];
let disk: Tmpfs | undefined;
const tmp = (n: string) => { const d = mkdtempSync(join(tmpdir(), `rs-soak-${n}-`)); dirs.push(d); return d; };
beforeAll(async () => {
  broker = await useBroker(true);
  if (broker.unavailable) console.log(`SKIP soak test: ${broker.unavailable}`);
}, 300_000);
afterAll(async () => {
  killChildren();
  await releaseBroker(broker);
  disk?.unmount();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const PARTITIONS = 4;
/** Events each collector pushes per tick, and the tick (ms). */
const STEP = 15;
const TICK_MS = 50;
/** The full-disk collector's tmpfs: a few dozen batches; the outage overflows it. */
const SMALL_DISK = 128 << 10;
const OUTAGE_MS = 5_000;
const AFTER_KILL_MS = 5_000;

interface Collector { name: string; events: Event[]; next: number; out: CollectorOutput; sink: KafkaEventSink; failures: OutputFailure[] }

describe('soak: the Kafka pipeline through kills, an outage, poison, disorder and a full disk', () => {
  it('ends with the store equal to analyze of the same input, nothing lost or doubled', async (ctx) => {
    if (broker.unavailable) return ctx.skip();
    const t0 = Date.now();
    const topics = topicsFor('soak');
    const args = (dataDir: string, extra: string[]) => ['correlate', '--kafka', broker.bootstrap, '--data-dir', dataDir,
      '--group', topics.groupId, '--topic', topics.eventsTopic, '--findings-topic', topics.findingsTopic, '--dlq-topic', topics.dlqTopic,
      '--partitions', String(PARTITIONS), '--commit-interval', '200ms', '--checkpoint-interval', '1s', ...extra];
    const dataDir = tmp('store');

    // --- collectors: three with room in their spool, one whose spool disk is a small tmpfs
    const mounted = mountTmpfs(SMALL_DISK);
    let fullDiskHow: string;
    if ('unavailable' in mounted) fullDiskHow = `size-bounded spool of ${SMALL_DISK} bytes (${mounted.unavailable})`;
    else { disk = mounted; fullDiskHow = `tmpfs of ${SMALL_DISK} bytes`; }
    const collectors: Collector[] = [];
    for (let h = 0; h < 4; h++) {
      const full = h === 3;
      const [batch] = hostBatches(h, { hosts: 5, cycles: 1000, batchSize: 1_000_000, seed: 17 });
      const sink = await createKafkaSink({ brokers: [broker.bootstrap], ...topics, partitions: PARTITIONS, lingerMs: 5 });
      const failures: OutputFailure[] = [];
      const spool = await DiskSpool.open(full
        ? (disk ? { dir: disk.dir, maxBytes: 64 << 20, fsync: 'interval' } : { dir: tmp('small'), maxBytes: SMALL_DISK })
        : { dir: tmp(`spool${h}`), maxBytes: 64 << 20, segmentBytes: 256 << 10 });
      // the full-disk collector sends every batch through its spool (memoryBytes 0), so the outage fills the disk
      const out = new CollectorOutput({ host: batch!.host!, sink, spool, memoryBytes: full ? 0 : 64 << 10,
        onError: (_err, where) => { failures.push(where); } });
      collectors.push({ name: batch!.host!.hostname!, events: batch!.events! as Event[], next: 0, out, sink, failures });
    }
    const [fullDisk] = collectors.slice(3);
    // a producer that is not one of them sends the poison and the burst
    const other = await createKafkaSink({ brokers: [broker.bootstrap], ...topics, partitions: PARTITIONS });
    const poison = poisonBatch(collectors[0]!.name);
    const [burstSrc] = hostBatches(4, { hosts: 5, cycles: 300, batchSize: 1_000_000, seed: 17 });
    const burst: EventBatch = { ...burstSrc!, events: [...burstSrc!.events!].reverse() }; // descending ts, seqs in arrival order
    const burstTs = burst.events!.map((e) => Number(e.tsNs));
    expect(burstTs.every((t, i) => i === 0 || t <= burstTs[i - 1]!)).toBe(true);

    // --- the run
    const marks: Record<string, number> = {};
    // RS_DEBUG=FILE: the run's progress, as it goes
    const debug = (what: string) => { if (process.env.RS_DEBUG) appendFileSync(process.env.RS_DEBUG, `${new Date().toISOString()} ${what}\n`); };
    const mark = (what: string) => { marks[what] = Date.now() - t0; debug(what); };
    let correlator = spawnCli(args(dataDir, ['--quiet']));
    const kills: { at: number; committed: number }[] = [];
    const brokerAt: { state: 'up' | 'stopping' | 'down' | 'starting' | 'restarted' } = { state: 'up' };
    let committedAfterRestart = -1;
    let downSince = 0;
    let lastCheck = 0;
    let committed = 0;
    let sentExtras = false;
    const background: Promise<unknown>[] = [];
    for (let tick = 0; ; tick++) {
      for (const c of collectors) {
        if (c.next < c.events.length) { c.out.push(c.events.slice(c.next, c.next + STEP)); c.next += STEP; }
      }
      const now = Date.now() - t0;
      if (!sentExtras && now > 3_000) {
        sentExtras = true;
        background.push(other.send([{ key: collectors[0]!.name, value: poison }]),
          other.send([{ key: burst.host!.hostname!, value: v1.EventBatch.encode(burst).finish() }]));
        mark('poison and burst sent');
      }
      if (tick % 40 === 0) debug(`committed ${committed} tick ${tick} broker ${brokerAt.state} kills ${kills.length} pushed ${collectors.map((c) => c.next).join(',')}`);
      if (now - lastCheck > 500 && brokerAt.state !== 'stopping' && brokerAt.state !== 'down' && brokerAt.state !== 'starting') {
        lastCheck = now;
        committed = await committedOffsets(broker.bootstrap, topics.groupId, topics.eventsTopic);
        // the baseline for kill 2: the first commit seen once the broker is back
        if (brokerAt.state === 'restarted' && committedAfterRestart < 0 && committed > 0) committedAfterRestart = committed;
      }
      // kill 1: once the first correlator has committed something
      if (kills.length === 0 && committed > 0) {
        correlator.kill('SIGKILL');
        expect(await correlator.exited).toBe(null);
        committed = await committedOffsets(broker.bootstrap, topics.groupId, topics.eventsTopic); // what it committed before it died
        kills.push({ at: now, committed });
        mark('correlator SIGKILL 1');
        correlator = spawnCli(args(dataDir, ['--quiet']));
      }
      // the broker goes away for a while, with the second correlator running and the collectors producing
      // (once the second correlator runs and has committed: one that cannot reach a broker when it starts exits 1)
      if (kills.length === 1 && brokerAt.state === 'up' && now > 8_000 && committed > kills[0]!.committed) {
        brokerAt.state = 'stopping';
        mark('broker stop');
        background.push(stop(broker.handle!, { purge: false }).then(() => { brokerAt.state = 'down'; downSince = Date.now(); mark('broker down'); }));
      }
      if (brokerAt.state === 'down' && Date.now() - downSince > OUTAGE_MS) {
        brokerAt.state = 'starting';
        background.push(start({ stateDir: broker.handle!.stateDir }).then((h) => { broker.handle = h; brokerAt.state = 'restarted'; mark('broker up'); }));
      }
      // kill 2: once the second correlator has committed more after the restart than when the broker was back
      if (kills.length === 1 && committedAfterRestart >= 0 && committed > committedAfterRestart) {
        correlator.kill('SIGKILL');
        expect(await correlator.exited).toBe(null);
        kills.push({ at: now, committed });
        mark('correlator SIGKILL 2');
      }
      // after the second kill the collectors go on for a while: the last correlator has a backlog to replay and read
      if (kills.length === 2 && (collectors.every((c) => c.next >= c.events.length) || now - kills[1]!.at > AFTER_KILL_MS)) break;
      if (correlator.exitCode !== null && kills.length < 2 && correlator.signalCode === null) {
        throw new Error(`the correlator exited by itself (${correlator.exitCode}):\n${correlator.output().slice(-3000)}`);
      }
      if (now > 180_000) throw new Error(`soak stuck: broker ${brokerAt.state}, kills ${kills.length}, committed ${committed}; correlator:\n${correlator.output().slice(-3000)}`);
      await sleep(TICK_MS);
    }
    mark('production done');
    await Promise.all(background);
    for (const c of collectors) {
      await c.out.flush();
      // a last heartbeat (an agent sends one every second): it carries the drops still owed when the disk was full
      c.out.push([]);
      await c.out.flush();
      mark(`flushed ${c.name}`);
      expect(c.out.owedDropped, c.name).toBe(0);
      await c.out.close(); await c.sink.close();
    }
    await other.close();
    mark('collectors done');
    expect(fullDisk!.out.stats.droppedEvents).toBeGreaterThan(0); // the disk did fill up

    // --- a last correlator drains the topic
    const last = spawnCli(args(dataDir, ['--drain']));
    expect(await exitCode(last, 180_000), last.output()).toBe(0);
    mark('drained');
    const summary = JSON.parse(last.output().trim().split('\n').filter((l) => l.startsWith('{')).pop()!) as Record<string, number>;

    // --- what the topic holds: the same input for analyze
    const messages = await readTopicMessages(broker.bootstrap, topics.eventsTopic);
    const frames = messages.map((m) => m.value);
    const traceFile = join(tmp('trace'), 'topic.pb');
    writeFileSync(traceFile, lengthPrefixed(frames));
    const stdout = new Capture(), stderr = new Capture();
    expect(await analyze([traceFile, '--format', 'json', '--lenient'], { stdout, stderr }), stderr.text).toBe(0);
    const analysis = JSON.parse(stdout.text) as { episodes: Record<string, unknown>[]; findings: Record<string, unknown>[];
      summary: { input: Record<string, number> } };
    mark('analyzed');

    // the poison: skipped by analyze, dead-lettered by the pipeline with its reason and offset
    const poisoned = messages.filter((m) => Buffer.compare(m.value, Buffer.from(poison)) === 0);
    expect(poisoned.length).toBe(1);
    expect(analysis.summary.input.skippedInput).toBe(1);
    // The dead-letter topic is at-least-once, as the findings topic: a correlator killed after dead-lettering a message
    // and before committing its offset dead-letters it again on restart (its source-partition/offset headers say it
    // is the same message). Only the poisoned message is there, every copy with its reason.
    const dlq = await readTopicMessages(broker.bootstrap, topics.dlqTopic);
    expect(dlq.length).toBeGreaterThanOrEqual(1);
    expect([...new Set(dlq.map((m) => `${m.headers['source-partition']}/${m.headers['source-offset']}`))])
      .toEqual([`${poisoned[0]!.partition}/${poisoned[0]!.offset}`]);
    for (const m of dlq) expect(m.headers.reason).toMatch(/^invalid batch: events\[0\]\.barFault\.bar: wire type 5/);

    // the store equals analyze of the same messages
    const stored = await readStore(dataDir);
    const want = analyzeJsonRows(analysis);
    const got = normalise(stored);
    expect(got.episodes.length).toBe(want.episodes.length);
    expect(got.episodes).toEqual(want.episodes);
    expect(got.findings).toEqual(want.findings);
    expect(want.findings.length).toBeGreaterThan(0);

    // every event once: per host the topic's seqs are unique; the collectors' are 0..n-1 but for counted drops
    const batches = messages.filter((m) => m !== poisoned[0]).map((m) => v1.EventBatch.decode(m.value));
    const eventsInTopic = batches.reduce((n, b) => n + b.events!.length, 0);
    expect(stored.distinctEvents).toBe(eventsInTopic); // lost: 0
    expect(stored.events).toBe(stored.distinctEvents); // duplicated: 0
    for (const c of collectors) {
      const seqs: number[] = [];
      let dropped = 0;
      for (const b of batches.filter((x) => x.host?.hostname === c.name)) {
        dropped += Number(b.dropped ?? 0);
        for (let k = 0; k < b.events!.length; k++) seqs.push(Number(b.firstSeq ?? 0) + k);
      }
      expect(new Set(seqs).size, c.name).toBe(seqs.length);
      expect(c.out.seq, c.name).toBe(Math.min(c.next, c.events.length)); // every event pushed got a seq
      expect(seqs.length + c.out.stats.droppedEvents, c.name).toBe(c.out.seq); // nothing lost silently
      expect(dropped, c.name).toBe(c.out.stats.droppedEvents); // and `dropped` says how much
      expect(c.failures.filter((f) => f !== 'spool-write' && f !== 'spool-commit' && f !== 'replay'), c.name).toEqual([]);
      if (c !== fullDisk) expect(c.out.stats.droppedEvents, c.name).toBe(0);
    }
    const health = new Map(stored.health.map((h) => [h.hostname, h])); // the newest sample per host
    expect(Number(health.get(fullDisk!.name)?.dropped)).toBe(fullDisk!.out.stats.droppedEvents);
    for (const h of health.values()) expect(Number(h.lag), String(h.hostname)).toBe(0);

    const total = Date.now() - t0;
    console.log(`soak figures: ${JSON.stringify({
      wallSeconds: total / 1000, marksSeconds: Object.fromEntries(Object.entries(marks).map(([k, v]) => [k, v / 1000])),
      messages: messages.length, events: eventsInTopic, eventsPushed: collectors.reduce((n, c) => n + c.out.seq, 0),
      burstEvents: burst.events!.length, correlatorKills: kills, brokerOutages: 1,
      fullDisk: { how: fullDiskHow, droppedEvents: fullDisk!.out.stats.droppedEvents, spoolWriteErrors: fullDisk!.out.stats.spoolWriteErrors,
        spooledBatches: fullDisk!.out.stats.spooledBatches },
      spooledBatches: collectors.slice(0, 3).map((c) => c.out.stats.spooledBatches),
      deadLettered: dlq.length, episodes: got.episodes.length, findings: got.findings.length,
      analyze: analysis.summary.input, lastCorrelator: summary, lost: stored.distinctEvents - eventsInTopic, duplicated: stored.events - stored.distinctEvents,
      episodeRowsBeforeMerge: stored.episodeRows,
    })}`);
  }, 240_000);
});
