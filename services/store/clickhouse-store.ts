// The EventStore over @clickhouse/client (chDB embedded or a server). Raw events go out as Native blocks
// (native.ts), the other tables as TabSeparated text, both built straight from the decoded messages (no
// per-row objects); values in queries are query parameters.
import type { ClickHouseClient } from '@clickhouse/client';
import { EXPLAIN_LIMITS, findingSpan, type EpisodeTimes } from '../core/finding-window.js';
import { FindingKind, type Cgroup, type Episode, type EventBatch, type Finding, type KernelStack } from '../core/model.js';
import { workloadOf } from '../core/workload.js';
import type { BatchScan } from '../core/wire.js';
import type { BootSeen, EventStore, HostHealth } from './types.js';
import {
  COLUMN_ENUM_VALUES, defaultSchemaOptions, EVENT_COLUMN_TYPES, TABLES, type SchemaOptions,
} from './schema.js';
import { chdbSpoolDir } from './connect.js';
import { applyMigrations } from './migrate.js';
import { EventBlock, NativeRows } from './native.js';
import { clientInsertPath, defaultWriterOptions, spoolFileInsertPath, TableWriter, tsv, type RowBuffer, type TableWriterOptions } from './writer.js';

import { evidenceObject } from '../trace/json.js';

export interface ClickHouseStoreOptions {
  schema?: Partial<SchemaOptions>;
  writer?: Partial<TableWriterOptions>;
  /** Added to a boot's clock offset when it is first captured. A replay of N seconds ingested in one go
   * would otherwise land in the future; the simulator source passes −duration so its window ends ≈ now. */
  wallClockShiftNs?: number;
  /** chDB: rows are handed to the engine through files in this directory (see writer.ts). Default for a
   * client from connect(): `<data-dir>/spool`. */
  spoolDir?: string;
  /** Wall clock in ms (tests pin it). */
  now?: () => number;
  /** Raw-event inserts go through this client (openStore: the connection's `lane()`, a second chDB connection,
   * so they run beside episode inserts and reads instead of queueing with them). Default: `client`. The store
   * closes it with `client`. */
  eventsClient?: ClickHouseClient;
}

const EVENT_COLUMNS = [
  'hostname', 'boot_id', 'seq', 'ts_ns', 'boot_offset_ns', 'cpu', 'pid', 'tid', 'comm', 'device', 'kind',
  'driver', 'zap_bars_on_revoke', 'dmabuf_bar_mmap', 'wait_ns', 'start', 'length', 'duration_ns', 'zap_target',
  'had_vmas', 'revoked', 'dmabuf_count', 'device_has_vmas', 'dmabuf_id', 'importer_count', 'bar', 'backing',
  'mapping_id', 'map_length', 'snapshot', 'ok', 'trigger', 'group_id',
  'memory_enabled', 'power_state', 'device_revoked', 'open_count', 'no_command_memory', 'custom_vm_ops_bars', 'ret', 'power_from', 'power_to',
  'cgroup_id', 'stack_id',
] as const;

// name and Native type (the ingest table's DDL: schema.ts episodeColumns)
const EPISODE_NATIVE = [
  ['episode_id', 'String'], ['hostname', 'LowCardinality(String)'], ['boot_id', 'LowCardinality(String)'],
  ['device', 'LowCardinality(String)'], ['driver', 'LowCardinality(String)'], ['kernel_release', 'LowCardinality(String)'],
  ['trigger', EVENT_COLUMN_TYPES.trigger], ['group_id', 'UInt64'], ['acquire_ts_ns', 'UInt64'], ['release_ts_ns', 'UInt64'],
  ['revoke', 'Bool'], ['lock_wait_ns', 'UInt64'], ['hold_ns', 'UInt64'], ['revoke_ns', 'UInt64'], ['zap_ns', 'UInt64'],
  ['dmabuf_revoke_ns', 'UInt64'], ['move_ns', 'UInt64'], ['zap_count', 'UInt32'], ['dmabuf_count', 'UInt32'],
  ['importer_count', 'UInt32'], ['legacy_mappings', 'UInt32'], ['dmabuf_mappings', 'UInt32'], ['complete', 'Bool'],
  ['boot_offset_ns', 'Int64'],
  ['pid', 'UInt32'], ['comm', 'LowCardinality(String)'], ['trigger_ret', 'Int32'], ['stale_triggers', 'UInt32'],
  ['intended_empty_zaps', 'UInt32'], ['before_observation_release_ns', 'UInt64'],
  ['cgroup_id', 'UInt64'], ['vm', 'LowCardinality(String)'], ['pod_uid', 'LowCardinality(String)'], ['pod_name', 'LowCardinality(String)'],
  ['container_id', 'String'], ['acquire_stack_id', 'UInt64'],
] as const;
const EPISODE_COLUMNS = EPISODE_NATIVE.map(([name]) => name);
const TRIGGER_KNOWN = new Set(Object.values(COLUMN_ENUM_VALUES.trigger));
const CAPABILITY_KNOWN = new Set(Object.keys(COLUMN_ENUM_VALUES.capability));
const FINDING_KIND_KNOWN = new Set(Object.values(COLUMN_ENUM_VALUES.finding));

const FINDING_COLUMNS = [
  'finding_id', 'kind', 'severity', 'hostname', 'boot_id', 'device', 'driver', 'kernel_release', 'episode_id', 'ts_ns',
  'inconclusive', 'evidence', 'boot_offset_ns',
] as const;

const HEALTH_COLUMNS = [
  'observed_at', 'hostname', 'boot_id', 'kernel_release', 'collector_version', 'capabilities', 'events', 'dropped',
  'lost', 'lag', 'last_ts_ns', 'now_ns',
] as const;


/** A finding's evidence as stored: always the text of a JSON object (docs/rules.md). The correlator's text is kept as
 * it is; anything else (a finding written by hand or by an older version) is wrapped as {"text": ...}. */
function evidenceText(evidence: string | null | undefined): string {
  const text = evidence ?? '';
  if (text.startsWith('{')) {
    try {
      const v: unknown = JSON.parse(text);
      if (v && typeof v === 'object' && !Array.isArray(v)) return text;
    } catch { /* not JSON: wrapped below */ }
  }
  return JSON.stringify(evidenceObject(text));
}

/** A written finding whose window of raw events is copied into finding_events at the next flush. */
type PendingWindow = Pick<Finding, 'findingId' | 'hostname' | 'bootId' | 'device' | 'tsNs' | 'kind' | 'evidence' | 'episodeId'>;

/** Episodes remembered between flushes for their findings' windows (a finding comes with its episode; past this many,
 * the oldest are forgotten and their findings keep a window around the finding alone). */
const EPISODE_TIMES_MAX = 200_000;

/** A string inside an Array(String) value of a TabSeparated row: single-quoted, with ClickHouse's escapes (the array
 * text is read as it is, not TSV-unescaped first). */
const sqlQuoted = (s: string): string => `'${s.replace(/[\\'\t\n\r]/g, (c) => (c === '\t' ? '\\t' : c === '\n' ? '\\n' : c === '\r' ? '\\r' : `\\${c}`))}'`;

export class ClickHouseStore implements EventStore {
  readonly schema: SchemaOptions;
  private readonly writerOpts: TableWriterOptions;
  private readonly now: () => number;
  private readonly shiftNs: bigint;
  private readonly bootOffsets = new Map<string, string>();
  private readonly events: TableWriter<EventBlock>;
  private readonly episodes: TableWriter<NativeRows>;
  /** Boot offsets (decimal) as the lo/hi words of their Int64. */
  private readonly offsetWords = new Map<string, readonly [number, number]>();
  private readonly findings: TableWriter;
  private readonly health: TableWriter;
  private readonly bootClock: TableWriter;
  private readonly cgroups: TableWriter;
  private readonly stacks: TableWriter;
  private readonly timer: NodeJS.Timeout;
  private closed = false;
  private readonly eventsClient: ClickHouseClient;
  private pendingWindows: PendingWindow[] = [];
  private readonly episodeTimes = new Map<string, EpisodeTimes>();
  /** Findings whose window was copied into finding_events, and the rows copied. */
  windowsKept = 0;

  constructor(readonly client: ClickHouseClient, opts: ClickHouseStoreOptions = {}) {
    this.schema = { ...defaultSchemaOptions, ...opts.schema };
    this.writerOpts = { ...defaultWriterOptions, ...opts.writer };
    this.now = opts.now ?? Date.now;
    this.shiftNs = BigInt(Math.trunc(opts.wallClockShiftNs ?? 0));
    const db = this.schema.database;
    const spoolDir = opts.spoolDir ?? chdbSpoolDir(client);
    const path = spoolDir ? spoolFileInsertPath(client, spoolDir) : clientInsertPath(client);
    this.eventsClient = opts.eventsClient ?? client;
    const eventsPath = this.eventsClient === client ? path
      : spoolDir ? spoolFileInsertPath(this.eventsClient, spoolDir) : clientInsertPath(this.eventsClient);
    this.events = new TableWriter(eventsPath, `${db}.${TABLES.events}`, EVENT_COLUMNS, this.writerOpts,
      new EventBlock(this.writerOpts.maxRows + 1024), 'Native');
    // episodes go through the Null ingest table whose MV drops rows already stored (schema.ts)
    this.episodes = new TableWriter(path, `${db}.${TABLES.episodesIngest}`, EPISODE_COLUMNS, this.writerOpts,
      new NativeRows(EPISODE_NATIVE.map(([name, type]) => ({ name, type }))), 'Native');
    this.findings = new TableWriter(path, `${db}.${TABLES.findings}`, FINDING_COLUMNS,
      { ...this.writerOpts, maxDelayMs: Math.min(1_000, this.writerOpts.maxDelayMs) });
    this.health = new TableWriter(path, `${db}.${TABLES.hostHealth}`, HEALTH_COLUMNS, this.writerOpts);
    this.bootClock = new TableWriter(path, `${db}.${TABLES.bootClock}`, ['hostname', 'boot_id', 'offset_ns', 'first_seen'], this.writerOpts);
    this.cgroups = new TableWriter(path, `${db}.${TABLES.cgroups}`, ['hostname', 'boot_id', 'cgroup_id', 'path', 'vm', 'pod_uid', 'pod_name', 'container_id'],
      this.writerOpts);
    this.stacks = new TableWriter(path, `${db}.${TABLES.kernelStacks}`, ['hostname', 'boot_id', 'stack_id', 'frames'], this.writerOpts);
    const tickMs = Math.max(20, Math.min(250, this.writerOpts.maxDelayMs / 4));
    this.timer = setInterval(() => {
      const t = Date.now();
      for (const w of this.writers()) w.tick(t);
    }, tickMs);
    this.timer.unref();
  }

  private writers(): TableWriter<RowBuffer>[] {
    return [this.bootClock, this.events, this.episodes, this.findings, this.health, this.cgroups, this.stacks];
  }

  /** Rows written so far per table, and rows waiting in buffers. */
  get counters(): { events: number; episodes: number; findings: number; pendingRows: number; inserts: number } {
    return {
      events: this.events.written, episodes: this.episodes.written, findings: this.findings.written,
      pendingRows: this.writers().reduce((s, w) => s + w.pendingRows, 0),
      inserts: this.writers().reduce((s, w) => s + w.inserts, 0),
    };
  }

  /** Applies the migrations not applied yet, oldest first (`through`: only up to that version, as an older
   * release would have; tests build old stores with it). */
  async migrate(through = Infinity): Promise<void> {
    await applyMigrations(this.client, this.schema, { through, now: this.now });
    await this.loadBootClock();
  }

  /** Applied migrations, oldest first. */
  async appliedMigrations(): Promise<{ version: number; name: string; checksum: string }[]> {
    return (await this.rows<{ version: number; name: string; checksum: string }>(
      `SELECT version, name, checksum FROM ${this.schema.database}.${TABLES.migrations} FINAL ORDER BY version`))
      .map((r) => ({ ...r, version: Number(r.version) }));
  }

  private async rows<T>(query: string, params: Record<string, unknown> = {}): Promise<T[]> {
    const rs = await this.client.query({ query, query_params: params, format: 'JSONEachRow' });
    return rs.json<T>();
  }

  private async loadBootClock(): Promise<void> {
    const rows = await this.rows<{ hostname: string; boot_id: string; offset_ns: string }>(
      `SELECT hostname, boot_id, argMin(offset_ns, first_seen) AS offset_ns FROM ${this.schema.database}.${TABLES.bootClock} GROUP BY hostname, boot_id`);
    for (const r of rows) this.bootOffsets.set(`${r.hostname}\u0000${r.boot_id}`, String(r.offset_ns));
  }

  /** Wall clock − monotonic for a boot, as a decimal Int64 string: captured once, persisted, reused. */
  private async bootOffset(hostname: string, bootId: string, tsNs: number): Promise<string> {
    const key = `${hostname}\u0000${bootId}`;
    const known = this.bootOffsets.get(key);
    if (known !== undefined) return known;
    const stored = await this.rows<{ offset_ns: string }>(
      `SELECT argMin(offset_ns, first_seen) AS offset_ns FROM ${this.schema.database}.${TABLES.bootClock}
       WHERE hostname = {hostname:String} AND boot_id = {boot_id:String} GROUP BY hostname, boot_id`,
      { hostname, boot_id: bootId });
    if (stored.length > 0) {
      const offset = String(stored[0]!.offset_ns);
      this.bootOffsets.set(key, offset);
      return offset;
    }
    return this.captureOffset(hostname, bootId, tsNs);
  }

  /** A boot seen for the first time anywhere: its offset is now − tsNs (+ the configured shift). */
  private async captureOffset(hostname: string, bootId: string, tsNs: number): Promise<string> {
    const wallMs = this.now();
    const offset = (BigInt(Math.trunc(wallMs)) * 1_000_000n + this.shiftNs - BigInt(Math.trunc(tsNs))).toString();
    this.bootOffsets.set(`${hostname}\u0000${bootId}`, offset);
    // buffered like the rows that use it; flush() writes it first
    await this.bootClock.append(`${tsv(hostname)}\t${tsv(bootId)}\t${offset}\t${(wallMs / 1000).toFixed(3)}\n`, 1);
    return offset;
  }

  /**
   * Optional step before writeBatch for a group of batches (the pipeline calls it per bus delivery): the
   * boots none of them has been seen with are looked up in boot_clock with one query instead of one each
   * (a fleet's first seconds bring every host's boot at once), and captured if not stored.
   */
  async prepareBatches(batches: readonly EventBatch[]): Promise<void> {
    await this.prepareBoots(batches.filter((b) => b.events?.length)
      .map((b) => ({ hostname: b.host?.hostname ?? '', bootId: b.host?.bootId ?? '', tsNs: b.events![0]!.tsNs ?? 0 })));
  }

  /** prepareBatches for boots given as (hostname, boot id, ts of the batch's first event). */
  async prepareBoots(boots: readonly BootSeen[]): Promise<void> {
    let missing: Map<string, BootSeen> | undefined;
    for (const b of boots) {
      const key = `${b.hostname}\u0000${b.bootId}`;
      if (this.bootOffsets.has(key) || missing?.has(key)) continue;
      (missing ??= new Map()).set(key, b);
    }
    if (!missing) return;
    const hosts = [...new Set([...missing.values()].map((m) => m.hostname))];
    const stored = await this.rows<{ hostname: string; boot_id: string; offset_ns: string }>(
      `SELECT hostname, boot_id, argMin(offset_ns, first_seen) AS offset_ns FROM ${this.schema.database}.${TABLES.bootClock}
       WHERE hostname IN {hosts:Array(String)} GROUP BY hostname, boot_id`, { hosts });
    for (const r of stored) {
      const key = `${r.hostname}\u0000${r.boot_id}`;
      if (missing.delete(key)) this.bootOffsets.set(key, String(r.offset_ns));
    }
    for (const m of missing.values()) await this.captureOffset(m.hostname, m.bootId, m.tsNs);
  }

  /** A batch's new entries of its boot's cgroup and kernel stack tables (EventBatch.cgroups, .stacks). */
  private async writeLookups(hostname: string, bootId: string, cgroups: readonly Cgroup[] | null | undefined,
    stacks: readonly KernelStack[] | null | undefined): Promise<void> {
    const key = `${tsv(hostname)}\t${tsv(bootId)}\t`;
    if (cgroups?.length) {
      let out = '';
      for (const c of cgroups) {
        const w = workloadOf(c.path ?? '');
        out += `${key}${c.id ?? 0}\t${tsv(c.path)}\t${tsv(w.vm)}\t${tsv(w.podUid)}\t${tsv(c.podName)}\t${tsv(w.containerId)}\n`;
      }
      await this.cgroups.append(out, cgroups.length);
    }
    if (stacks?.length) {
      let out = '';
      for (const k of stacks) out += `${key}${k.id ?? 0}\t[${(k.frames ?? []).map(sqlQuoted).join(',')}]\n`;
      await this.stacks.append(out, stacks.length);
    }
  }

  async writeBatch(batch: EventBatch): Promise<void> {
    const events = batch.events ?? [];
    const hostname = batch.host?.hostname ?? '';
    const bootId = batch.host?.bootId ?? '';
    await this.writeLookups(hostname, bootId, batch.cgroups, batch.stacks);
    if (events.length === 0) return;
    const offset = this.bootOffsets.get(`${hostname}\u0000${bootId}`) ?? await this.bootOffset(hostname, bootId, events[0]!.tsNs ?? 0);
    this.events.buffer.add(hostname, bootId, batch.firstSeq ?? 0, this.words(offset), events);
    await this.events.added();
  }

  /** writeBatch for a batch read by the wire scan (core/wire.ts): the same rows, without decoding the batch.
   * The scan must stay as it is until the returned promise settles. */
  async writeScan(scan: BatchScan): Promise<void> {
    const hostname = scan.host?.hostname ?? '', bootId = scan.host?.bootId ?? '';
    if (scan.cgroups.length || scan.stacks.length) await this.writeLookups(hostname, bootId, scan.cgroups, scan.stacks);
    if (scan.count === 0) return;
    const offset = this.bootOffsets.get(`${hostname}\u0000${bootId}`) ?? await this.bootOffset(hostname, bootId, scan.ts[0]!);
    this.events.buffer.addScan(scan, this.words(offset));
    await this.events.added();
  }

  /** A boot offset (decimal Int64) as the lo/hi words of its 64 bits. */
  private words(offset: string): readonly [number, number] {
    let w = this.offsetWords.get(offset);
    if (!w) {
      const x = BigInt.asUintN(64, BigInt(offset));
      w = [Number(x & 0xffffffffn), Number(x >> 32n)];
      this.offsetWords.set(offset, w);
    }
    return w;
  }

  async writeEpisodes(episodes: Episode[]): Promise<void> {
    if (episodes.length === 0) return;
    // before any await: the findings written beside these episodes find them at the next flush
    const times = this.episodeTimes;
    for (const e of episodes) times.set(e.episodeId, { acquireTsNs: e.acquireTsNs, lockWaitNs: e.lockWaitNs, releaseTsNs: e.releaseTsNs });
    if (times.size > EPISODE_TIMES_MAX) {
      for (const k of times.keys()) { times.delete(k); if (times.size <= EPISODE_TIMES_MAX / 2) break; }
    }
    const t = this.episodes.buffer;
    for (const e of episodes) {
      // an episode that began before observation (collector started inside its lock window) has no acquire
      const observed = e.acquireTsNs > 0;
      const offset = this.bootOffsets.get(`${e.hostname ?? ''}\u0000${e.bootId ?? ''}`) ??
        await this.bootOffset(e.hostname ?? '', e.bootId ?? '', (observed ? e.acquireTsNs : e.releaseTsNs) ?? 0);
      const w = this.words(offset);
      // column indexes follow EPISODE_NATIVE
      const r = t.row();
      t.str(0, r, e.episodeId); t.str(1, r, e.hostname); t.str(2, r, e.bootId); t.str(3, r, e.device); t.str(4, r, e.driver);
      t.str(5, r, e.kernelRelease);
      t.num(6, r, TRIGGER_KNOWN.has(e.trigger) ? e.trigger : 0);
      t.num(7, r, e.groupId); t.num(8, r, e.acquireTsNs); t.num(9, r, e.releaseTsNs); t.bool(10, r, e.revoke);
      t.num(11, r, e.lockWaitNs); t.num(12, r, e.holdNs); t.num(13, r, e.revokeNs); t.num(14, r, e.zapNs);
      t.num(15, r, e.dmabufRevokeNs); t.num(16, r, e.moveNs); t.num(17, r, e.zapCount); t.num(18, r, e.dmabufCount);
      t.num(19, r, e.importerCount); t.num(20, r, e.legacyMappings); t.num(21, r, e.dmabufMappings); t.bool(22, r, e.complete);
      t.words(23, r, w[0], w[1]);
      t.num(24, r, e.pid); t.str(25, r, e.comm); t.num(26, r, e.triggerRet); t.num(27, r, e.staleTriggers);
      t.num(28, r, e.intendedEmptyZaps); t.num(29, r, observed ? 0 : e.releaseTsNs);
      t.num(30, r, e.cgroupId); t.str(31, r, e.vm); t.str(32, r, e.podUid); t.str(33, r, e.podName); t.str(34, r, e.containerId);
      t.num(35, r, e.acquireStackId);
    }
    await this.episodes.added();
  }

  async writeFindings(findings: Finding[]): Promise<void> {
    if (findings.length === 0) return;
    for (const f of findings) {
      this.pendingWindows.push({ findingId: f.findingId, hostname: f.hostname, bootId: f.bootId, device: f.device, tsNs: f.tsNs,
        kind: f.kind, evidence: f.evidence, episodeId: f.episodeId });
    }
    let out = '';
    for (const f of findings) {
      const offset = this.bootOffsets.get(`${f.hostname ?? ''}\u0000${f.bootId ?? ''}`) ??
        await this.bootOffset(f.hostname ?? '', f.bootId ?? '', f.tsNs ?? 0);
      out += `${tsv(f.findingId)}\t${FINDING_KIND_KNOWN.has(f.kind) ? f.kind : 0}\t${f.severity}\t${tsv(f.hostname)}\t${tsv(f.bootId)}\t${tsv(f.device)}\t${tsv(f.driver)}\t` +
        `${tsv(f.kernelRelease)}\t${tsv(f.episodeId)}\t${f.tsNs}\t${f.inconclusive ? 1 : 0}\t${tsv(evidenceText(f.evidence))}\t${offset}\n`;
    }
    await this.findings.append(out, findings.length);
  }

  async writeHostHealth(rows: HostHealth[]): Promise<void> {
    if (rows.length === 0) return;
    let out = '';
    for (const h of rows) {
      // Array(Enum8) in TSV: quoted names (enum-as-number does not reach inside arrays); unknown names are left out
      const caps = h.capabilities.filter((c) => CAPABILITY_KNOWN.has(c)).map((c) => `'${c}'`);
      out += `${(h.observedAtMs / 1000).toFixed(3)}\t${tsv(h.hostname)}\t${tsv(h.bootId)}\t${tsv(h.kernelRelease)}\t` +
        `${tsv(h.collectorVersion)}\t[${caps.join(',')}]\t${h.events}\t${h.dropped}\t${h.lost}\t${h.lag}\t${h.lastTsNs}\t${h.nowNs ?? 0}\n`;
    }
    await this.health.append(out, rows.length);
  }

  async flush(): Promise<void> {
    // boot clocks, then events: a reader that sees an episode can also see its raw events
    await this.bootClock.flush();
    await this.events.flush();
    await Promise.all([this.episodes.flush(), this.findings.flush(), this.health.flush(), this.cgroups.flush(), this.stacks.flush()]);
    await this.keepFindingWindows();
  }

  /** Copies each finding written since the last flush its window of raw events (core/finding-window.ts) from `events`
   * into finding_events, inside the engine, now that both are durable: the newest EXPLAIN_LIMITS.maxEvents of the
   * device's events in [keepFromNs, toNs]. */
  private async keepFindingWindows(): Promise<void> {
    const pending = this.pendingWindows;
    if (pending.length === 0) return;
    this.pendingWindows = [];
    const times = this.episodeTimes;
    // One statement per boot (ts_ns is that boot's clock), at most 500 windows each: the boot's events are found by
    // the primary key (hostname, boot_id) and narrowed to the windows' devices and whole time range on those columns
    // before the join reads the rest.
    const groups = new Map<string, PendingWindow[]>();
    for (const f of pending) {
      const k = `${f.hostname}\u0000${f.bootId}`;
      const g = groups.get(k);
      if (g) g.push(f); else groups.set(k, [f]);
    }
    const chunks: PendingWindow[][] = [];
    for (const g of groups.values()) {
      g.sort((a, b) => a.tsNs - b.tsNs);
      for (let i = 0; i < g.length; i += 500) chunks.push(g.slice(i, i + 500));
    }
    for (let c = 0; c < chunks.length; c++) {
      try {
        await this.copyWindows(chunks[c]!, times);
      } catch (err) {
        this.pendingWindows.unshift(...chunks.slice(c).flat()); // copied at the next flush
        throw err;
      }
      this.windowsKept += chunks[c]!.length;
    }
    for (const f of pending) if (f.episodeId) times.delete(f.episodeId);
  }

  /** The windows of findings of one boot: the newest EXPLAIN_LIMITS.maxEvents of each finding's device events. */
  private async copyWindows(chunk: PendingWindow[], times: ReadonlyMap<string, EpisodeTimes>): Promise<void> {
    const db = this.schema.database;
    const spans = chunk.map((f) => findingSpan(f, f.kind === FindingKind.LOCK_HELD_OPEN ? null : times.get(f.episodeId)));
    await this.client.command({
      query: `INSERT INTO ${db}.${TABLES.findingEvents} (finding_id, ${EVENT_COLUMNS.join(', ')})
        SELECT w.1, ${EVENT_COLUMNS.map((c) => `e.${c}`).join(', ')}
        FROM ${db}.${TABLES.events} AS e FINAL
        INNER JOIN (SELECT arrayJoin(arrayZip({ids:Array(String)}, {devices:Array(String)}, {los:Array(UInt64)}, {his:Array(UInt64)})) AS w) AS w
          ON toString(e.device) = w.2
        WHERE e.hostname = {host:String} AND e.boot_id = {boot:String} AND e.device IN {devices:Array(String)}
          AND e.ts_ns >= {lo:UInt64} AND e.ts_ns <= {hi:UInt64} AND e.ts_ns >= w.3 AND e.ts_ns <= w.4
        ORDER BY w.1, e.ts_ns DESC, e.seq DESC
        LIMIT {max:UInt32} BY w.1`,
      query_params: {
        host: chunk[0]!.hostname, boot: chunk[0]!.bootId,
        ids: chunk.map((f) => f.findingId), devices: chunk.map((f) => f.device),
        los: spans.map((x) => x.keepFromNs), his: spans.map((x) => x.toNs),
        lo: Math.min(...spans.map((x) => x.keepFromNs)), hi: Math.max(...spans.map((x) => x.toNs)),
        max: EXPLAIN_LIMITS.maxEvents,
      },
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    try {
      await this.flush();
    } finally {
      if (this.eventsClient !== this.client) await this.eventsClient.close();
      await this.client.close();
    }
  }
}
