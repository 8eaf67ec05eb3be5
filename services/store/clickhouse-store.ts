// The EventStore over @clickhouse/client (chDB embedded or a server). Rows go out as TabSeparated text
// built straight from the decoded messages (no per-row objects); values in queries are query parameters.
import type { ClickHouseClient } from '@clickhouse/client';
import { bodyOf, type Episode, type EventBatch, type Finding } from '../core/model.js';
import type { EventStore, HostHealth } from './types.js';
import {
  bootstrapStatements, defaultSchemaOptions, EVENT_KINDS, listMigrations, migrationChecksum, TABLES, type SchemaOptions,
} from './schema.js';
import { clientInsertPath, defaultWriterOptions, spoolFileInsertPath, TableWriter, tsv, type TableWriterOptions } from './writer.js';
import { Capability } from '../core/model.js';

export interface ClickHouseStoreOptions {
  schema?: Partial<SchemaOptions>;
  writer?: Partial<TableWriterOptions>;
  /** Added to a boot's clock offset when it is first captured. A replay of N seconds ingested in one go
   * would otherwise land in the future; the simulator source passes −duration so its window ends ≈ now. */
  wallClockShiftNs?: number;
  /** chDB: rows are handed to the engine through files in this directory (see writer.ts). */
  spoolDir?: string;
  /** Wall clock in ms (tests pin it). */
  now?: () => number;
}

const EVENT_COLUMNS = [
  'hostname', 'boot_id', 'seq', 'ts_ns', 'boot_offset_ns', 'cpu', 'pid', 'tid', 'comm', 'device', 'kind',
  'driver', 'zap_bars_on_revoke', 'dmabuf_bar_mmap', 'wait_ns', 'start', 'length', 'duration_ns', 'zap_target',
  'had_vmas', 'revoked', 'dmabuf_count', 'device_has_vmas', 'dmabuf_id', 'importer_count', 'bar', 'backing',
  'mapping_id', 'map_length', 'snapshot', 'ok', 'trigger', 'group_id',
] as const;

const EPISODE_COLUMNS = [
  'episode_id', 'hostname', 'boot_id', 'device', 'driver', 'kernel_release', 'trigger', 'group_id', 'acquire_ts_ns',
  'release_ts_ns', 'revoke', 'lock_wait_ns', 'hold_ns', 'revoke_ns', 'zap_ns', 'dmabuf_revoke_ns', 'move_ns',
  'zap_count', 'dmabuf_count', 'importer_count', 'legacy_mappings', 'dmabuf_mappings', 'complete', 'boot_offset_ns',
] as const;

const FINDING_COLUMNS = [
  'finding_id', 'kind', 'severity', 'hostname', 'boot_id', 'device', 'driver', 'kernel_release', 'episode_id', 'ts_ns',
  'inconclusive', 'evidence', 'boot_offset_ns',
] as const;

const HEALTH_COLUMNS = [
  'observed_at', 'hostname', 'boot_id', 'kernel_release', 'collector_version', 'capabilities', 'events', 'dropped',
  'lost', 'lag', 'last_ts_ns',
] as const;

const KIND_INDEX = new Map<string, number>(EVENT_KINDS.map((k, i) => [k, i]));
const b = (v: boolean | null | undefined): string => (v ? '1' : '');
const nb = (v: boolean | null | undefined): string => (v === true ? '1' : v === false ? '0' : '');
const n = (v: number | null | undefined): string => (v ? String(v) : '');
const TABS = Array.from({ length: 23 }, (_, i) => '\t'.repeat(i));

export class ClickHouseStore implements EventStore {
  readonly schema: SchemaOptions;
  private readonly writerOpts: TableWriterOptions;
  private readonly now: () => number;
  private readonly shiftNs: bigint;
  private readonly bootOffsets = new Map<string, string>();
  private readonly events: TableWriter;
  private readonly episodes: TableWriter;
  private readonly findings: TableWriter;
  private readonly health: TableWriter;
  private readonly bootClock: TableWriter;
  private readonly timer: NodeJS.Timeout;
  private closed = false;

  constructor(readonly client: ClickHouseClient, opts: ClickHouseStoreOptions = {}) {
    this.schema = { ...defaultSchemaOptions, ...opts.schema };
    this.writerOpts = { ...defaultWriterOptions, ...opts.writer };
    this.now = opts.now ?? Date.now;
    this.shiftNs = BigInt(Math.trunc(opts.wallClockShiftNs ?? 0));
    const db = this.schema.database;
    const path = opts.spoolDir ? spoolFileInsertPath(client, opts.spoolDir) : clientInsertPath(client);
    this.events = new TableWriter(path, `${db}.${TABLES.events}`, EVENT_COLUMNS, this.writerOpts);
    // episodes go through the Null ingest table whose MV drops rows already stored (schema.ts)
    this.episodes = new TableWriter(path, `${db}.${TABLES.episodesIngest}`, EPISODE_COLUMNS, this.writerOpts);
    this.findings = new TableWriter(path, `${db}.${TABLES.findings}`, FINDING_COLUMNS, this.writerOpts);
    this.health = new TableWriter(path, `${db}.${TABLES.hostHealth}`, HEALTH_COLUMNS, this.writerOpts);
    this.bootClock = new TableWriter(path, `${db}.${TABLES.bootClock}`, ['hostname', 'boot_id', 'offset_ns', 'first_seen'], this.writerOpts);
    const tickMs = Math.max(20, Math.min(250, this.writerOpts.maxDelayMs / 4));
    this.timer = setInterval(() => {
      const t = Date.now();
      for (const w of this.writers()) w.tick(t);
    }, tickMs);
    this.timer.unref();
  }

  private writers(): TableWriter[] { return [this.bootClock, this.events, this.episodes, this.findings, this.health]; }

  /** Rows written so far per table, and rows waiting in buffers. */
  get counters(): { events: number; episodes: number; findings: number; pendingRows: number; inserts: number } {
    return {
      events: this.events.written, episodes: this.episodes.written, findings: this.findings.written,
      pendingRows: this.writers().reduce((s, w) => s + w.pendingRows, 0),
      inserts: this.writers().reduce((s, w) => s + w.inserts, 0),
    };
  }

  async migrate(): Promise<void> {
    for (const query of bootstrapStatements(this.schema)) await this.client.command({ query });
    const table = `${this.schema.database}.${TABLES.migrations}`;
    const applied = new Set((await this.rows<{ version: number }>(`SELECT version FROM ${table} FINAL`)).map((r) => Number(r.version)));
    for (const m of listMigrations()) {
      if (applied.has(m.version)) continue;
      // every statement is IF NOT EXISTS: a migration interrupted half way is simply run again
      for (const query of m.statements(this.schema)) await this.client.command({ query });
      await this.client.insert({
        table, format: 'JSONEachRow',
        values: [{ version: m.version, name: m.name, checksum: migrationChecksum(m, this.schema), applied_at: this.now() }],
        clickhouse_settings: { async_insert: 0 },
      });
    }
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
    let offset: string;
    if (stored.length > 0) {
      offset = String(stored[0]!.offset_ns);
    } else {
      const wallMs = this.now();
      offset = (BigInt(Math.trunc(wallMs)) * 1_000_000n + this.shiftNs - BigInt(Math.trunc(tsNs))).toString();
      // buffered like the rows that use it; flush() writes it first
      await this.bootClock.append(`${tsv(hostname)}\t${tsv(bootId)}\t${offset}\t${(wallMs / 1000).toFixed(3)}\n`, 1);
    }
    this.bootOffsets.set(key, offset);
    return offset;
  }

  async writeBatch(batch: EventBatch): Promise<void> {
    const events = batch.events ?? [];
    if (events.length === 0) return;
    const hostname = batch.host?.hostname ?? '';
    const bootId = batch.host?.bootId ?? '';
    const offset = await this.bootOffset(hostname, bootId, events[0]!.tsNs ?? 0);
    const head = `${tsv(hostname)}\t${tsv(bootId)}\t`;
    let seq = batch.firstSeq ?? 0;
    let out = '';
    for (const ev of events) {
      const kind = bodyOf(ev);
      let body: string;
      // body columns, in EVENT_COLUMNS order from `driver` (22 fields, each preceded by a tab)
      switch (kind) {
        case 'deviceInfo': { const d = ev.deviceInfo!; body = `\t${tsv(d.driver)}\t${b(d.zapBarsOnRevoke)}\t${b(d.dmabufBarMmap)}${TABS[19]}`; break; }
        case 'lockAcquire': body = `${TABS[4]}${n(ev.lockAcquire!.waitNs)}${TABS[18]}`; break;
        case 'zap': {
          const z = ev.zap!;
          body = `${TABS[5]}${n(z.start)}\t${n(z.length)}\t${n(z.durationNs)}\t${n(z.target)}\t${nb(z.hadVmas)}${TABS[13]}`;
          break;
        }
        case 'dmabufRevoke': {
          const r = ev.dmabufRevoke!;
          body = `${TABS[7]}${n(r.durationNs)}${TABS[3]}${b(r.revoked)}\t${n(r.dmabufCount)}\t${nb(r.deviceHasVmas)}${TABS[10]}`;
          break;
        }
        case 'moveNotify': { const m = ev.moveNotify!; body = `${TABS[7]}${n(m.durationNs)}${TABS[6]}${n(m.dmabufId)}\t${n(m.importerCount)}${TABS[8]}`; break; }
        case 'barMmap': {
          const m = ev.barMmap!;
          body = `${TABS[15]}${n(m.bar)}\t${n(m.backing)}\t${n(m.mappingId)}\t${n(m.length)}\t${b(m.snapshot)}${TABS[3]}`;
          break;
        }
        case 'barMunmap': { const m = ev.barMunmap!; body = `${TABS[15]}${n(m.bar)}\t\t${n(m.mappingId)}${TABS[5]}`; break; }
        case 'barFault': { const f = ev.barFault!; body = `${TABS[15]}${n(f.bar)}\t\t${n(f.mappingId)}\t\t\t${b(f.ok)}${TABS[2]}`; break; }
        case 'trigger': { const t = ev.trigger!; body = `${TABS[21]}${n(t.kind)}\t${n(t.groupId)}`; break; }
        default: body = TABS[22]!; // lockRelease or no body
      }
      out += `${head}${seq}\t${ev.tsNs ?? 0}\t${offset}\t${n(ev.cpu)}\t${n(ev.pid)}\t${n(ev.tid)}\t${tsv(ev.comm)}\t${tsv(ev.device)}\t` +
        `${kind ? KIND_INDEX.get(kind)! : 0}${body}\n`;
      seq++;
    }
    await this.events.append(out, events.length);
  }

  async writeEpisodes(episodes: Episode[]): Promise<void> {
    if (episodes.length === 0) return;
    let out = '';
    for (const e of episodes) {
      const offset = await this.bootOffset(e.hostname ?? '', e.bootId ?? '', e.acquireTsNs ?? 0);
      out += `${tsv(e.episodeId)}\t${tsv(e.hostname)}\t${tsv(e.bootId)}\t${tsv(e.device)}\t${tsv(e.driver)}\t${tsv(e.kernelRelease)}\t` +
        `${e.trigger}\t${e.groupId}\t${e.acquireTsNs}\t${e.releaseTsNs}\t${e.revoke ? 1 : 0}\t${e.lockWaitNs}\t${e.holdNs}\t` +
        `${e.revokeNs}\t${e.zapNs}\t${e.dmabufRevokeNs}\t${e.moveNs}\t${e.zapCount}\t${e.dmabufCount}\t${e.importerCount}\t` +
        `${e.legacyMappings}\t${e.dmabufMappings}\t${e.complete ? 1 : 0}\t${offset}\n`;
    }
    await this.episodes.append(out, episodes.length);
  }

  async writeFindings(findings: Finding[]): Promise<void> {
    if (findings.length === 0) return;
    let out = '';
    for (const f of findings) {
      const offset = await this.bootOffset(f.hostname ?? '', f.bootId ?? '', f.tsNs ?? 0);
      out += `${tsv(f.findingId)}\t${f.kind}\t${f.severity}\t${tsv(f.hostname)}\t${tsv(f.bootId)}\t${tsv(f.device)}\t${tsv(f.driver)}\t` +
        `${tsv(f.kernelRelease)}\t${tsv(f.episodeId)}\t${f.tsNs}\t${f.inconclusive ? 1 : 0}\t${tsv(f.evidence)}\t${offset}\n`;
    }
    await this.findings.append(out, findings.length);
  }

  async writeHostHealth(rows: HostHealth[]): Promise<void> {
    if (rows.length === 0) return;
    let out = '';
    for (const h of rows) {
      // Array(Enum8) in TSV: quoted names (enum-as-number does not reach inside arrays); unknown names are left out
      const caps = h.capabilities.filter((c) => typeof (Capability as unknown as Record<string, unknown>)[c] === 'number').map((c) => `'${c}'`);
      out += `${(h.observedAtMs / 1000).toFixed(3)}\t${tsv(h.hostname)}\t${tsv(h.bootId)}\t${tsv(h.kernelRelease)}\t` +
        `${tsv(h.collectorVersion)}\t[${caps.join(',')}]\t${h.events}\t${h.dropped}\t${h.lost}\t${h.lag}\t${h.lastTsNs}\n`;
    }
    await this.health.append(out, rows.length);
  }

  async flush(): Promise<void> {
    // boot clocks, then events: a reader that sees an episode can also see its raw events
    await this.bootClock.flush();
    await this.events.flush();
    await Promise.all([this.episodes.flush(), this.findings.flush(), this.health.flush()]);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    try {
      await this.flush();
    } finally {
      await this.client.close();
    }
  }
}
