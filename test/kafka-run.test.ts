// `revokescope run --kafka BROKERS`: the embedded demo through a real broker gives what analyze gives (issue 4).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { simulate } from '../collectors/simulator/index.js';
import { analyzeBatches } from '../services/core/analysis.js';
import { writeTrace } from '../services/trace/index.js';
import { exitCode, killChildren, readStore, releaseBroker, spawnCli, topicsFor, useBroker, type TestBroker } from './support/kafka/env.js';

let broker: TestBroker;
const dirs: string[] = [];
beforeAll(async () => {
  broker = await useBroker();
  if (broker.unavailable) console.log(`SKIP kafka run test: ${broker.unavailable}`);
}, 300_000);
afterAll(async () => {
  killChildren();
  await releaseBroker(broker);
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('revokescope run --kafka', () => {
  it('produces the source to Kafka, drains it with the correlator consumer and stores what analyze finds', async (ctx) => {
    if (broker.unavailable) {
      if (process.env.CI === 'true') throw new Error(`Kafka broker unavailable in CI: ${broker.unavailable}`);
      ctx.skip();
    }
    const dir = mkdtempSync(join(tmpdir(), 'rs-run-kafka-'));
    dirs.push(dir);
    const { batches } = simulate({ hosts: 6, durationNs: 20e9, seed: 4 });
    const trace = join(dir, 'fleet.pb');
    await writeTrace(trace, batches);
    const t = topicsFor('run');
    const cli = spawnCli(['run', '--kafka', broker.bootstrap, '--input', trace, '--data-dir', join(dir, 'data'), '--no-api'], {
      REVOKESCOPE_KAFKA_EVENTS_TOPIC: t.eventsTopic, REVOKESCOPE_KAFKA_FINDINGS_TOPIC: t.findingsTopic,
      REVOKESCOPE_KAFKA_DLQ_TOPIC: t.dlqTopic, REVOKESCOPE_KAFKA_GROUP: t.groupId, REVOKESCOPE_KAFKA_PARTITIONS: '3',
    });
    expect(await exitCode(cli, 180_000), cli.output()).toBe(0);
    expect(cli.output()).toContain('revokescope run --kafka');
    const expected = analyzeBatches(batches);
    const stored = await readStore(join(dir, 'data'));
    expect(stored.episodes.map((e) => e.episode_id).sort()).toEqual(expected.episodes.map((e) => e.episodeId).sort());
    expect(stored.findings.map((f) => f.finding_id).sort()).toEqual(expected.findings.map((f) => f.findingId).sort());
    expect(stored.distinctEvents).toBe(batches.reduce((n, b) => n + (b.events?.length ?? 0), 0));
  }, 240_000);
});
