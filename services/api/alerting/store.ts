// Persistence of rules, alerts, silences and the notification log in the store's ClickHouse. Rows are
// versioned (ReplacingMergeTree(version)); the newest version wins and is read with FINAL.
import type { ClickHouseClient } from '@clickhouse/client';
import { applyMigrations } from '../../store/migrate.js';
import { checkIdentifier, defaultSchemaOptions } from '../../store/schema.js';
import { ALERTING_TABLES } from './queries.js';
import type { AlertRecord, Rule, Silence } from './types.js';
import type { Matcher } from './matchers.js';

export interface NotificationLogEntry {
  atMs: number;
  receiver: string;
  groupKey: string;
  status: 'firing' | 'resolved';
  alerts: number;
  fingerprints: string[];
  attempts: number;
  ok: boolean;
  error: string;
  httpStatus: number;
}

export class AlertingStore {
  private lastVersion = 0;
  private readonly db: string;

  constructor(readonly client: ClickHouseClient, database: string, private readonly cluster?: string) {
    this.db = checkIdentifier('database', database);
  }

  /** A strictly increasing row version (µs since epoch, bumped on ties). */
  private version(): number {
    const v = Math.max(Date.now() * 1000, this.lastVersion + 1);
    this.lastVersion = v;
    return v;
  }

  /** The store's migrations (services/store owns every table, ours included): a no-op on a migrated store. */
  async migrate(): Promise<void> {
    await applyMigrations(this.client, { ...defaultSchemaOptions, database: this.db, cluster: this.cluster });
  }

  private async insert(table: string, values: Record<string, unknown>[]): Promise<void> {
    if (values.length === 0) return;
    await this.client.insert({ table: `${this.db}.${table}`, values, format: 'JSONEachRow', clickhouse_settings: { async_insert: 0 } });
  }

  private async rows<T>(query: string, params: Record<string, unknown> = {}): Promise<T[]> {
    const rs = await this.client.query({ query, query_params: params, format: 'JSONEachRow' });
    return rs.json<T>();
  }

  // ---- rules
  async loadRules(): Promise<{ rules: Rule[]; knownIds: Set<string> }> {
    const rs = await this.rows<{ id: string; deleted: number; body: string }>(
      `SELECT id, deleted, body FROM ${this.db}.${ALERTING_TABLES.rules} FINAL`);
    const rules: Rule[] = [];
    for (const r of rs) if (!Number(r.deleted)) rules.push(JSON.parse(r.body) as Rule);
    return { rules, knownIds: new Set(rs.map((r) => r.id)) };
  }

  async saveRules(rules: Rule[]): Promise<void> {
    await this.insert(ALERTING_TABLES.rules, rules.map((r) => ({
      id: r.id, version: this.version(), deleted: 0, body: JSON.stringify(r), updated_at_ms: r.updatedAt })));
  }

  /** A tombstone: a deleted built-in rule does not come back at the next start. */
  async deleteRule(id: string): Promise<void> {
    await this.insert(ALERTING_TABLES.rules, [{ id, version: this.version(), deleted: 1, body: '', updated_at_ms: Date.now() }]);
  }

  // ---- alerts
  async loadAlerts(): Promise<AlertRecord[]> {
    const rs = await this.rows<Record<string, unknown>>(
      `SELECT fingerprint, rule_id, state, labels, annotations, value, active_at_ms, fired_at_ms, resolved_at_ms, updated_at_ms
       FROM ${this.db}.${ALERTING_TABLES.alerts} FINAL WHERE deleted = 0`);
    return rs.map((r) => ({
      fingerprint: String(r.fingerprint), ruleId: String(r.rule_id), state: r.state as AlertRecord['state'],
      labels: r.labels as Record<string, string>, annotations: r.annotations as Record<string, string>, value: Number(r.value),
      activeAt: Number(r.active_at_ms), firedAt: Number(r.fired_at_ms), resolvedAt: Number(r.resolved_at_ms),
      updatedAt: Number(r.updated_at_ms),
    }));
  }

  async saveAlerts(alerts: AlertRecord[], deleted = false): Promise<void> {
    await this.insert(ALERTING_TABLES.alerts, alerts.map((a) => ({
      fingerprint: a.fingerprint, version: this.version(), deleted: deleted ? 1 : 0, rule_id: a.ruleId, state: a.state,
      labels: a.labels, annotations: a.annotations, value: Number.isFinite(a.value) ? a.value : 0,
      active_at_ms: a.activeAt, fired_at_ms: a.firedAt, resolved_at_ms: a.resolvedAt, updated_at_ms: a.updatedAt,
    })));
  }

  // ---- silences
  async loadSilences(): Promise<Silence[]> {
    const rs = await this.rows<Record<string, unknown>>(
      `SELECT id, matchers, starts_at_ms, ends_at_ms, created_by, comment, updated_at_ms FROM ${this.db}.${ALERTING_TABLES.silences} FINAL`);
    return rs.map((r) => ({
      id: String(r.id), matchers: JSON.parse(String(r.matchers)) as Matcher[], startsAt: Number(r.starts_at_ms),
      endsAt: Number(r.ends_at_ms), createdBy: String(r.created_by), comment: String(r.comment), updatedAt: Number(r.updated_at_ms),
    }));
  }

  async saveSilence(s: Silence): Promise<void> {
    await this.insert(ALERTING_TABLES.silences, [{
      id: s.id, version: this.version(), matchers: JSON.stringify(s.matchers), starts_at_ms: s.startsAt, ends_at_ms: s.endsAt,
      created_by: s.createdBy, comment: s.comment, updated_at_ms: s.updatedAt,
    }]);
  }

  // ---- notification log
  async logNotification(e: NotificationLogEntry): Promise<void> {
    await this.insert(ALERTING_TABLES.notifications, [{
      at_ms: e.atMs, receiver: e.receiver, group_key: e.groupKey, status: e.status, alerts: e.alerts,
      fingerprints: e.fingerprints.join(','), attempts: e.attempts, ok: e.ok, error: e.error.slice(0, 2000), http_status: e.httpStatus,
    }]);
  }

  /** The last successful notification per (receiver, group): what was sent, so a restart does not resend. */
  async lastNotifications(): Promise<{ receiver: string; groupKey: string; atMs: number; fingerprints: string; status: string }[]> {
    const rs = await this.rows<Record<string, unknown>>(
      `SELECT receiver, group_key, max(at_ms) AS at, argMax(fingerprints, at_ms) AS fps, argMax(status, at_ms) AS st
       FROM ${this.db}.${ALERTING_TABLES.notifications} WHERE ok GROUP BY receiver, group_key`);
    return rs.map((r) => ({ receiver: String(r.receiver), groupKey: String(r.group_key), atMs: Number(r.at),
      fingerprints: String(r.fps), status: String(r.st) }));
  }

  async notificationLog(limit: number, receiver?: string): Promise<NotificationLogEntry[]> {
    const where = receiver === undefined ? '' : 'WHERE receiver = {receiver:String}';
    const rs = await this.rows<Record<string, unknown>>(
      `SELECT * FROM ${this.db}.${ALERTING_TABLES.notifications} ${where} ORDER BY at_ms DESC LIMIT {limit:UInt32}`,
      { limit, receiver });
    return rs.map((r) => ({
      atMs: Number(r.at_ms), receiver: String(r.receiver), groupKey: String(r.group_key), status: r.status as 'firing' | 'resolved',
      alerts: Number(r.alerts), fingerprints: String(r.fingerprints).split(',').filter(Boolean), attempts: Number(r.attempts),
      ok: Boolean(r.ok), error: String(r.error), httpStatus: Number(r.http_status),
    }));
  }
}
