// Alerts: every state with the evaluation trigger and the notification log (/api/v1), and the Alertmanager v2
// views of firing alerts and their groups (/api/v2/alerts, /api/v2/alerts/groups).
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { ALERTING_DEPENDENCIES } from '../../plugins.js';
import { typed } from '../../types.js';
import { AlertingEngine } from '../engine.js';
import { compileMatcherRegex, matchesAll, type LabelRegex, type MatchBudget } from '../matchers.js';
import { alertFilterQuery, alertGroup, alertView, gettableAlert } from '../schemas.js';
import type { AlertRecord } from '../types.js';
import { dateTimeSchema, iso, tags } from './common.js';

type AlertFilter = { active: boolean; silenced: boolean; inhibited: boolean; unprocessed: boolean; filter?: string[]; receiver?: string };

async function alerts(app: FastifyInstance): Promise<void> {
  const engine = app.alerting;
  const config = engine.config;
  const api = typed(app);

  // ------------------------------------------------------------------ v1: alerts (all states) + evaluation
  const viewAlert = (a: AlertRecord, now: number, budget: MatchBudget): Record<string, unknown> => ({
    fingerprint: a.fingerprint, ruleId: a.ruleId, state: a.state, labels: a.labels, annotations: a.annotations,
    value: Number.isFinite(a.value) ? a.value : 0,
    activeAt: iso(a.activeAt), ...(a.firedAt ? { firedAt: iso(a.firedAt) } : {}), ...(a.resolvedAt ? { resolvedAt: iso(a.resolvedAt) } : {}),
    updatedAt: iso(a.updatedAt), silencedBy: a.state === 'firing' ? engine.silencedBy(a.labels, now, budget) : [],
  });

  api.get('/api/v1/alerts', {
    schema: { tags: tags.v1, summary: 'Alerts in every state (pending, firing, resolved)',
      querystring: { type: 'object', additionalProperties: false, properties: {
        state: { type: 'array', items: { type: 'string', enum: ['pending', 'firing', 'resolved'] }, maxItems: 3 },
        filter: alertFilterQuery.properties.filter, rule: { type: 'string', maxLength: 64 } } } as const,
      response: { 200: { type: 'object', required: ['alerts'], properties: { alerts: { type: 'array', items: alertView } } } } },
  }, async (req) => {
    const budget = engine.matchBudget();
    const matchers = AlertingEngine.parseFilter(req.query.filter, budget);
    const now = engine.now();
    const states = req.query.state?.length ? new Set<string>(req.query.state) : undefined;
    const out = [...engine.alerts.values()]
      .filter((a) => (!states || states.has(a.state)) && (!req.query.rule || a.ruleId === req.query.rule) && matchesAll(matchers, a.labels, budget))
      .sort((a, b) => a.activeAt - b.activeAt || a.fingerprint.localeCompare(b.fingerprint));
    return { alerts: out.map((a) => viewAlert(a, now, budget)) };
  });

  api.post('/api/v1/alerts/evaluate', {
    schema: { tags: tags.v1, summary: 'Evaluate every rule now (admin; on the replica holding the evaluator lease, the others reload its alerts)',
      response: { 200: { type: 'object', required: ['evaluatedAt', 'counts'], properties: {
        evaluatedAt: dateTimeSchema, counts: { type: 'object', additionalProperties: { type: 'integer' } } } } } },
  }, async () => {
    await engine.evaluate();
    return { evaluatedAt: iso(engine.lastEvaluation), counts: engine.counts() };
  });

  api.get('/api/v1/notifications', {
    schema: { tags: tags.v1, summary: 'Notification log (newest first)',
      querystring: { type: 'object', additionalProperties: false, properties: {
        limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 }, receiver: { type: 'string', maxLength: 128 } } } as const,
      response: { 200: { type: 'object', required: ['notifications'], properties: { notifications: { type: 'array', items: {
        type: 'object', required: ['at', 'receiver', 'groupKey', 'status', 'alerts', 'attempts', 'ok', 'error', 'httpStatus'],
        properties: { at: dateTimeSchema, receiver: { type: 'string' }, groupKey: { type: 'string' }, status: { type: 'string' },
          alerts: { type: 'integer' }, fingerprints: { type: 'array', items: { type: 'string' } }, attempts: { type: 'integer' },
          ok: { type: 'boolean' }, error: { type: 'string' }, httpStatus: { type: 'integer' } } } } } } } },
  }, async (req) => {
    const log = await engine.store.notificationLog(req.query.limit, req.query.receiver);
    return { notifications: log.map((e) => ({ ...e, at: iso(e.atMs) })) };
  });

  // ------------------------------------------------------------------ v2: Alertmanager compatible
  /** Firing alerts as gettableAlerts, filtered like Alertmanager's GET /alerts. */
  const gettableAlerts = (q: AlertFilter): { alert: AlertRecord; view: Record<string, unknown>; receivers: string[] }[] => {
    const budget = engine.matchBudget();
    const matchers = AlertingEngine.parseFilter(q.filter, budget);
    let receiverRe: LabelRegex | undefined;
    if (q.receiver !== undefined && q.receiver !== '') receiverRe = compileMatcherRegex(q.receiver, budget);
    const now = engine.now();
    const out = [];
    for (const a of engine.alerts.values()) {
      if (a.state !== 'firing') continue;
      if (!matchesAll(matchers, a.labels, budget)) continue;
      const receivers = engine.notifier.receiversOf(a.labels);
      if (receiverRe && !receivers.some((r) => receiverRe.test(r, budget))) continue;
      const silencedBy = engine.silencedBy(a.labels, now, budget);
      const state = silencedBy.length ? 'suppressed' : 'active';
      if (!q.silenced && silencedBy.length) continue;
      if (!q.active && state === 'active') continue;
      const endsAt = Math.max(now, engine.lastEvaluation) + Math.max(4 * config.evaluationIntervalMs, 240_000);
      out.push({ alert: a, receivers, view: {
        labels: a.labels, annotations: a.annotations, receivers: receivers.map((name) => ({ name })), fingerprint: a.fingerprint,
        startsAt: iso(a.firedAt || a.activeAt), updatedAt: iso(a.updatedAt), endsAt: iso(endsAt),
        generatorURL: `${config.externalUrl.replace(/\/$/, '')}/api/v1/rules/${encodeURIComponent(a.ruleId)}`,
        status: { state, silencedBy, inhibitedBy: [] },
      } });
    }
    out.sort((x, y) => (x.alert.firedAt - y.alert.firedAt) || x.alert.fingerprint.localeCompare(y.alert.fingerprint));
    return out;
  };

  api.get('/api/v2/alerts', {
    schema: { tags: tags.v2, operationId: 'getAlerts', summary: 'Get a list of alerts (Alertmanager v2)', querystring: alertFilterQuery,
      response: { 200: { type: 'array', items: gettableAlert } } },
  }, async (req) => gettableAlerts(req.query).map((x) => x.view));

  api.get('/api/v2/alerts/groups', {
    schema: { tags: tags.v2, operationId: 'getAlertGroups', summary: 'Get a list of alert groups (Alertmanager v2)',
      querystring: alertFilterQuery, response: { 200: { type: 'array', items: alertGroup } } },
  }, async (req) => {
    const list = gettableAlerts(req.query);
    const groups = new Map<string, { labels: Record<string, string>; receiver: { name: string }; alerts: unknown[] }>();
    for (const x of list) {
      const gl = engine.notifier.groupLabels(x.alert.labels);
      for (const r of x.receivers) {
        const key = engine.notifier.groupKey(r, gl);
        let g = groups.get(key);
        if (!g) groups.set(key, (g = { labels: gl, receiver: { name: r }, alerts: [] }));
        g.alerts.push(x.view);
      }
    }
    return [...groups.values()];
  });
}

export const alertsPlugin = fp(alerts, { name: 'revokescope-alerts', fastify: '5.x', encapsulate: true, dependencies: ALERTING_DEPENDENCIES });
