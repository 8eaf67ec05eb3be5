// Notifications: push alerts to an Alertmanager (POST /api/v2/alerts, postableAlerts) and/or to webhooks
// with the Alertmanager v4 webhook payload. Alerts are grouped per receiver by config.groupBy; a group is
// sent when its set of firing alerts changes, when some of them resolve, and every repeatInterval (an
// Alertmanager receiver every minute: the endsAt we push would otherwise expire there). Delivery retries
// network errors, 5xx and 429 with exponential backoff; every outcome goes to the notification log.
import type { ApiMetrics } from '../observability/metrics.js';
import { matchesAll, parseMatchers, type Matcher } from './matchers.js';
import type { AlertingStore } from './store.js';
import type { AlertingConfig, AlertRecord, ReceiverConfig } from './types.js';
import { retry } from '../../lib/retry.js';

const iso = (ms: number): string => new Date(ms).toISOString();
export const DEFAULT_RECEIVER = 'revokescope';

interface SentState { fingerprints: string; atMs: number; status: string }

interface Receiver extends ReceiverConfig { parsed: Matcher[] }

export class Notifier {
  private readonly receivers: Receiver[];
  private readonly sent = new Map<string, SentState>();
  private readonly inFlight = new Set<Promise<void>>();
  private readonly busy = new Set<string>();

  constructor(private readonly config: AlertingConfig, private readonly store: AlertingStore, private readonly metrics?: ApiMetrics,
    private readonly now: () => number = Date.now, private readonly sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))) {
    this.receivers = config.receivers.map((r) => ({ ...r, parsed: (r.matchers ?? []).flatMap((m) => parseMatchers(m)) }));
  }

  /** What was sent last per group, from the notification log (at start, and when this replica takes over). */
  async init(): Promise<void> {
    const last = await this.store.lastNotifications();
    this.sent.clear();
    for (const r of last) {
      // logged in payload order, compared sorted (dispatch)
      const fingerprints = r.fingerprints.split(',').filter(Boolean).sort().join(',');
      this.sent.set(`${r.receiver}\u0000${r.groupKey}`, { fingerprints, atMs: r.atMs, status: r.status });
    }
  }

  /** Receivers an alert goes to: the configured ones whose matchers match, else the default (API only). */
  receiversOf(labels: Record<string, string>): string[] {
    const names = this.receivers.filter((r) => matchesAll(r.parsed, labels)).map((r) => r.name);
    return names.length ? names : [DEFAULT_RECEIVER];
  }

  receiverNames(): string[] {
    return [DEFAULT_RECEIVER, ...this.receivers.map((r) => r.name)];
  }

  groupLabels(labels: Record<string, string>): Record<string, string> {
    const out: Record<string, string> = {};
    for (const k of this.config.groupBy) if (labels[k] !== undefined) out[k] = labels[k]!;
    return out;
  }

  groupKey(receiver: string, groupLabels: Record<string, string>): string {
    const body = Object.keys(groupLabels).sort().map((k) => `${k}=${JSON.stringify(groupLabels[k])}`).join(',');
    return `{}/{receiver="${receiver}"}:{${body}}`;
  }

  /** Called after each evaluation with every alert; sends what changed (in the background). */
  dispatch(alerts: AlertRecord[], isSilenced: (a: AlertRecord) => boolean, now: number): void {
    for (const r of this.receivers) {
      const groups = new Map<string, { labels: Record<string, string>; alerts: AlertRecord[] }>();
      for (const a of alerts) {
        if (a.state === 'pending' || !matchesAll(r.parsed, a.labels)) continue;
        if (a.state === 'firing' && isSilenced(a)) continue;
        const gl = this.groupLabels(a.labels);
        const key = this.groupKey(r.name, gl);
        let g = groups.get(key);
        if (!g) groups.set(key, (g = { labels: gl, alerts: [] }));
        g.alerts.push(a);
      }
      // groups that were sent firing before and have no alerts left at all: nothing to say (their alerts
      // were retired after the retention); forget them
      for (const [key, g] of groups) {
        const firing = g.alerts.filter((a) => a.state === 'firing').map((a) => a.fingerprint).sort();
        const prev = this.sent.get(`${r.name}\u0000${key}`);
        const prevFiring = new Set(prev?.status === 'firing' ? prev.fingerprints.split(',').filter(Boolean) : []);
        // resolved alerts are news only if they were announced firing
        const resolved = g.alerts.filter((a) => a.state === 'resolved' && prevFiring.has(a.fingerprint));
        const fpText = firing.join(',');
        const repeat = r.type === 'alertmanager' ? Math.min(60_000, this.config.repeatIntervalMs) : this.config.repeatIntervalMs;
        const changed = fpText !== (prev?.status === 'firing' ? prev.fingerprints : '') || resolved.length > 0;
        const due = firing.length > 0 && (!prev || now - prev.atMs >= repeat);
        if (!changed && !due) continue;
        if (firing.length === 0 && resolved.length === 0) continue;
        const payloadAlerts = [...g.alerts.filter((a) => a.state === 'firing'), ...(r.sendResolved === false ? [] : resolved)];
        if (payloadAlerts.length === 0) {
          this.sent.set(`${r.name}\u0000${key}`, { fingerprints: '', atMs: now, status: 'resolved' });
          continue;
        }
        this.enqueue(r, key, g.labels, payloadAlerts, firing.length ? 'firing' : 'resolved', fpText, now);
      }
    }
  }

  private enqueue(r: Receiver, key: string, groupLabels: Record<string, string>, alerts: AlertRecord[], status: 'firing' | 'resolved',
    fpText: string, now: number): void {
    const slot = `${r.name}\u0000${key}`;
    if (this.busy.has(slot)) return; // a delivery of this group is still retrying; the next evaluation catches up
    this.busy.add(slot);
    const body = r.type === 'alertmanager' ? this.postableAlerts(alerts, now) : this.webhookPayload(r.name, key, groupLabels, alerts, status);
    const p = this.deliver(r, body).then(async (res) => {
      if (res.ok) this.sent.set(slot, { fingerprints: fpText, atMs: now, status });
      await this.store.logNotification({ atMs: this.now(), receiver: r.name, groupKey: key, status, alerts: alerts.length,
        fingerprints: alerts.map((a) => a.fingerprint), attempts: res.attempts, ok: res.ok, error: res.error, httpStatus: res.status })
        .catch(() => undefined);
    }).finally(() => { this.busy.delete(slot); this.inFlight.delete(p); });
    this.inFlight.add(p);
  }

  /** Wait until every queued delivery finished (tests, shutdown). */
  async idle(): Promise<void> {
    while (this.inFlight.size) await Promise.allSettled([...this.inFlight]);
  }

  private endsAt(a: AlertRecord, now: number): string {
    if (a.state === 'resolved') return iso(a.resolvedAt);
    // valid for 4 evaluation intervals (Prometheus' ValidUntil), at least 4 minutes
    return iso(now + Math.max(4 * this.config.evaluationIntervalMs, 240_000));
  }

  private generatorUrl(a: AlertRecord): string {
    return `${this.config.externalUrl.replace(/\/$/, '')}/api/v1/rules/${encodeURIComponent(a.ruleId)}`;
  }

  postableAlerts(alerts: AlertRecord[], now: number): unknown[] {
    return alerts.map((a) => ({ labels: a.labels, annotations: a.annotations, startsAt: iso(a.firedAt || a.activeAt),
      endsAt: this.endsAt(a, now), generatorURL: this.generatorUrl(a) }));
  }

  webhookPayload(receiver: string, groupKey: string, groupLabels: Record<string, string>, alerts: AlertRecord[],
    status: 'firing' | 'resolved'): unknown {
    const common = (pick: (a: AlertRecord) => Record<string, string>): Record<string, string> => {
      const [first, ...rest] = alerts.map(pick);
      const out: Record<string, string> = { ...first };
      for (const m of rest) for (const k of Object.keys(out)) if (m[k] !== out[k]) delete out[k];
      return out;
    };
    return {
      version: '4', groupKey, truncatedAlerts: 0, status, receiver, groupLabels,
      commonLabels: common((a) => a.labels), commonAnnotations: common((a) => a.annotations), externalURL: this.config.externalUrl,
      alerts: alerts.map((a) => ({
        status: a.state === 'resolved' ? 'resolved' : 'firing', labels: a.labels, annotations: a.annotations,
        startsAt: iso(a.firedAt || a.activeAt), endsAt: a.state === 'resolved' ? iso(a.resolvedAt) : '0001-01-01T00:00:00Z',
        generatorURL: this.generatorUrl(a), fingerprint: a.fingerprint,
      })),
    };
  }

  private async deliver(r: Receiver, body: unknown): Promise<{ ok: boolean; attempts: number; error: string; status: number }> {
    const url = r.type === 'alertmanager' ? `${r.url.replace(/\/$/, '')}/api/v2/alerts` : r.url;
    const text = JSON.stringify(body);
    let attempts = 0;
    try {
      const status = await retry<number>(async (attempt) => {
        attempts = attempt;
        let res: Response;
        try {
          res = await fetch(url, {
            method: 'POST', body: text, signal: AbortSignal.timeout(this.config.notifyTimeoutMs),
            headers: { 'content-type': 'application/json', 'user-agent': 'revokescope-alerting', ...r.headers },
          });
        } catch (e) {
          throw new DeliveryError((e as Error).message, 0);
        }
        await res.arrayBuffer().catch(() => undefined);
        if (!res.ok) throw new DeliveryError(`HTTP ${res.status}`, res.status);
        return res.status;
      }, {
        tries: this.config.notifyAttempts, backoff: 'exponential', baseMs: this.config.notifyBackoffMs, maxMs: 30_000, sleep: async (ms) => { await this.sleep(ms); },
        // a 4xx other than 429: the receiver rejects this payload, retrying won't help
        retriable: (e) => !(e instanceof DeliveryError) || e.status === 0 || e.status >= 500 || e.status === 429,
        onRetry: () => this.metrics?.notifications.inc({ receiver: r.name, outcome: 'retried' }),
      });
      this.metrics?.notifications.inc({ receiver: r.name, outcome: 'ok' });
      return { ok: true, attempts, error: '', status };
    } catch (e) {
      this.metrics?.notifications.inc({ receiver: r.name, outcome: 'failed' });
      return { ok: false, attempts, error: (e as Error).message, status: e instanceof DeliveryError ? e.status : 0 };
    }
  }
}

/** A webhook delivery that failed: its HTTP status (0: no response). */
class DeliveryError extends Error {
  constructor(message: string, readonly status: number) { super(message); }
}
