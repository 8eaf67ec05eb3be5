// Test helpers for the Kafka tests: the shared broker (global setup) or one of the file's own, the CLI in a
// child process, and the store read back for comparisons.
import { spawn, type ChildProcess } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { inject } from 'vitest';
import kafkajs from 'kafkajs';

const { Kafka, logLevel } = kafkajs;
import { v1, type EventBatch } from '../../../services/core/model.js';
import { openStore } from '../../../services/store/index.js';
import { BrokerUnavailable, start, stop, type BrokerHandle } from './broker.js';

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

export interface TestBroker { bootstrap: string; handle?: BrokerHandle; unavailable?: string }

/** The run's shared broker when global setup provided one; else a broker of this file's own. */
export async function useBroker(own = false): Promise<TestBroker> {
  let provided = '';
  let unavailable = '';
  try {
    provided = inject('kafkaBootstrap') ?? '';
    unavailable = inject('kafkaUnavailable') ?? '';
  } catch { /* no global setup wired */ }
  provided ||= process.env.REVOKESCOPE_TEST_KAFKA ?? '';
  if (unavailable && !own) return { bootstrap: '', unavailable };
  if (provided && !own) return { bootstrap: provided };
  try {
    const handle = await start();
    return { bootstrap: handle.bootstrap, handle };
  } catch (err) {
    if (err instanceof BrokerUnavailable && err.exitCode === 4) return { bootstrap: '', unavailable: err.message };
    throw err;
  }
}

export async function releaseBroker(b: TestBroker | undefined): Promise<void> {
  if (b?.handle) await stop(b.handle);
}

export function adminFor(bootstrap: string): InstanceType<typeof Kafka> {
  return new Kafka({ brokers: [bootstrap], clientId: 'revokescope-test', logLevel: logLevel.NOTHING });
}

let uniq = 0;
/** Topic names unique to this test (the shared broker serves every file). */
export function topicsFor(name: string): { eventsTopic: string; findingsTopic: string; dlqTopic: string; groupId: string } {
  const id = `${name}-${process.pid}-${Date.now().toString(36)}-${uniq++}`;
  return { eventsTopic: `t.${id}.events`, findingsTopic: `t.${id}.findings`, dlqTopic: `t.${id}.dlq`, groupId: `g.${id}` };
}

/** `revokescope <args>` through tsx in a child process (so it can be SIGKILLed). */
export function spawnCli(args: string[], env: NodeJS.ProcessEnv = {}): ChildProcess & { output: () => string; exited: Promise<number | null> } {
  const child = spawn(process.execPath, ['--import', 'tsx', join(repoRoot, 'services/cli/main.ts'), ...args], {
    cwd: repoRoot, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d) => { out += String(d); });
  child.stderr!.on('data', (d) => { out += String(d); });
  const exited = new Promise<number | null>((res) => child.on('exit', (code) => res(code)));
  live.add(child);
  void exited.then(() => live.delete(child));
  return Object.assign(child, { output: () => out, exited });
}

const live = new Set<ChildProcess>();
/** SIGKILL every CLI child still running (afterAll / afterEach). */
export function killChildren(): void {
  for (const c of live) if (c.pid && c.exitCode === null) c.kill('SIGKILL');
}

/** The child's exit code, or its output in an error after `ms`. */
export async function exitCode(cli: ReturnType<typeof spawnCli>, ms = 120_000): Promise<number | null> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, rej) => { timer = setTimeout(() => { cli.kill('SIGKILL'); rej(new Error(`CLI did not exit in ${ms} ms:\n${cli.output()}`)); }, ms); });
  try { return await Promise.race([cli.exited, timeout]); } finally { clearTimeout(timer); }
}

export interface StoredResult {
  episodes: Record<string, unknown>[];
  findings: Record<string, unknown>[];
  /** Rows per id before FINAL (a replayed write shows here until a merge). */
  episodeRows: number;
  events: number;
  distinctEvents: number;
  health: Record<string, unknown>[];
}

/** Read back what the correlator stored, in a stable order, without wall-clock columns. */
export async function readStore(dataDir: string): Promise<StoredResult> {
  const { store, connection } = await openStore({ dataDir });
  const db = store.schema.database;
  const q = async (query: string) => (await (await connection.client.query({ query, format: 'JSONEachRow' })).json()) as Record<string, unknown>[];
  try {
    const episodes = await q(`SELECT episode_id, hostname, boot_id, device, trigger, acquire_ts_ns, release_ts_ns, revoke,
      hold_ns, revoke_ns, zap_ns, zap_count, dmabuf_count, complete FROM ${db}.episodes FINAL ORDER BY episode_id`);
    const findings = await q(`SELECT finding_id, kind, severity, hostname, device, episode_id, ts_ns, inconclusive
      FROM ${db}.findings FINAL ORDER BY finding_id`);
    const [{ n: episodeRows }] = await q(`SELECT count() AS n FROM ${db}.episodes`);
    const [{ n: events, d: distinctEvents }] = await q(`SELECT count() AS n, uniqExact(hostname, boot_id, seq) AS d FROM ${db}.events FINAL`);
    const health = await q(`SELECT hostname, boot_id, events, dropped, lost, lag FROM ${db}.host_health ORDER BY observed_at`);
    return { episodes, findings, episodeRows: Number(episodeRows), events: Number(events), distinctEvents: Number(distinctEvents), health };
  } finally {
    await store.close();
  }
}

type Row = Record<string, unknown>;
const ENUMS: Record<string, Record<string, number>> = {
  trigger: v1.TriggerKind as unknown as Record<string, number>, kind: v1.FindingKind as unknown as Record<string, number>,
  severity: v1.Severity as unknown as Record<string, number>,
};

function fixRows(rows: Row[], numeric: string[], bools: string[]): Row[] {
  return rows.map((row) => {
    const o: Row = {};
    for (const [k, v] of Object.entries(row)) {
      if (k in ENUMS) o[k] = typeof v === 'string' && !/^\d+$/.test(v) ? ENUMS[k]![v] : Number(v);
      else if (numeric.includes(k)) o[k] = Number(v);
      else if (bools.includes(k)) o[k] = v === true || v === 1 || v === '1' ? 1 : 0;
      else o[k] = String(v);
    }
    return o;
  });
}

/** Stored rows with enum columns as numbers, 64-bit columns as strings and booleans as 0/1 (comparable). */
export function normalise(r: Pick<StoredResult, 'episodes' | 'findings'>): Pick<StoredResult, 'episodes' | 'findings'> {
  return {
    episodes: fixRows(r.episodes, ['zap_count', 'dmabuf_count'], ['revoke', 'complete']),
    findings: fixRows(r.findings, [], ['inconclusive']),
  };
}

const EPISODE_COLUMNS: [string, string][] = [['episode_id', 'episodeId'], ['hostname', 'hostname'], ['boot_id', 'bootId'],
  ['device', 'device'], ['trigger', 'trigger'], ['acquire_ts_ns', 'acquireTsNs'], ['release_ts_ns', 'releaseTsNs'], ['revoke', 'revoke'],
  ['hold_ns', 'holdNs'], ['revoke_ns', 'revokeNs'], ['zap_ns', 'zapNs'], ['zap_count', 'zapCount'], ['dmabuf_count', 'dmabufCount'],
  ['complete', 'complete']];
const FINDING_COLUMNS: [string, string][] = [['finding_id', 'findingId'], ['kind', 'kind'], ['severity', 'severity'],
  ['hostname', 'hostname'], ['device', 'device'], ['episode_id', 'episodeId'], ['ts_ns', 'tsNs'], ['inconclusive', 'inconclusive']];

/** `revokescope analyze --format json` output as the store's rows (normalised, in readStore's order). */
export function analyzeJsonRows(json: { episodes: Row[]; findings: Row[] }): Pick<StoredResult, 'episodes' | 'findings'> {
  const pick = (rows: Row[], cols: [string, string][], id: string) => rows.map((r) => Object.fromEntries(cols.map(([c, k]) => [c, r[k]])))
    .sort((a, b) => String(a[id]).localeCompare(String(b[id])));
  return normalise({ episodes: pick(json.episodes, EPISODE_COLUMNS, 'episode_id'), findings: pick(json.findings, FINDING_COLUMNS, 'finding_id') });
}

/** Offsets a consumer group has committed on a topic, summed over its partitions (0 while the coordinator cannot say). */
export async function committedOffsets(bootstrap: string, groupId: string, topic: string): Promise<number> {
  const admin = adminFor(bootstrap).admin();
  try {
    await admin.connect();
    const r = await admin.fetchOffsets({ groupId, topics: [topic] });
    return r[0]!.partitions.reduce((n, p) => n + Math.max(0, Number(p.offset)), 0);
  } catch {
    return 0; // broker down, coordinator loading or moving: ask again later
  } finally { await admin.disconnect().catch(() => {}); }
}

export interface RawMessage { partition: number; offset: number; key: string; value: Buffer; headers: Record<string, string> }

/** Every message of a topic up to its current end, by partition and offset. */
export async function readTopicMessages(bootstrap: string, topic: string): Promise<RawMessage[]> {
  const kafka = adminFor(bootstrap);
  const admin = kafka.admin();
  await admin.connect();
  const ends = await admin.fetchTopicOffsets(topic);
  await admin.disconnect();
  const want = ends.reduce((n, o) => n + Number(o.high) - Number(o.low), 0);
  const out: RawMessage[] = [];
  if (want === 0) return out;
  const consumer = kafka.consumer({ groupId: `${topic}.reader.${process.pid}.${Date.now()}` });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  let timer: NodeJS.Timeout | undefined;
  try {
    await new Promise<void>((res, rej) => {
      timer = setTimeout(() => rej(new Error(`read ${out.length} of ${want} messages of ${topic} in 60 s`)), 60_000);
      void consumer.run({ eachMessage: async ({ partition, message }) => {
        const headers = Object.fromEntries(Object.entries(message.headers ?? {}).map(([k, v]) => [k, String(v)]));
        out.push({ partition, offset: Number(message.offset), key: message.key?.toString('utf8') ?? '', value: message.value ?? Buffer.alloc(0), headers });
        if (out.length >= want) res();
      } });
    });
  } finally {
    clearTimeout(timer);
    await consumer.disconnect();
  }
  return out.sort((a, b) => a.partition - b.partition || a.offset - b.offset);
}

/** Every EventBatch on a topic up to its current end, decoded, in (partition, offset) order: each host's batches in the
 * order they were sent (a host's key keeps it on one partition). */
export async function readBatches(bootstrap: string, topic: string): Promise<EventBatch[]> {
  return (await readTopicMessages(bootstrap, topic)).map((m) => v1.EventBatch.decode(m.value));
}
