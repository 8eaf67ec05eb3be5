// The alerting API as a fastify plugin: rules CRUD and alert views (/api/v1), Alertmanager v2 compatible
// alerts, groups, silences, status and receivers (/api/v2), and the evaluator loop.
//
//   await app.register(alertingPlugin, { client, config: { database, receivers, ... }, metrics });
import { randomBytes } from 'node:crypto';
import type { ClickHouseClient } from '@clickhouse/client';
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { ApiMetrics } from '../observability/metrics.js';
import { AlertingEngine, BadRequestError, NotFoundError } from './engine.js';
import { compileMatcherRegex, matchesAll, MatcherError, type LabelRegex, type MatchBudget } from './matchers.js';
import { parseTime, ParamError } from '../params.js';
import { DEFAULT_RECEIVER } from './notify.js';
import {
  alertFilterQuery, alertGroup, alertmanagerStatus, alertView, gettableAlert, gettableSilence, idParam, postableSilence, ruleInput, ruleView,
} from './schemas.js';
import { defaultAlertingConfig, type AlertingConfig, type AlertRecord, type Rule, type Silence } from './types.js';

export { AlertingEngine } from './engine.js';
export { DEFAULT_RULES } from './rules.js';
export type { AlertingConfig, ReceiverConfig, Rule } from './types.js';

export interface AlertingPluginOptions {
  client: ClickHouseClient;
  config?: Partial<AlertingConfig>;
  metrics?: ApiMetrics;
  /** Clock (tests pin it). */
  now?: () => number;
  /** Run the evaluation loop (default true; config.evaluationIntervalMs = 0 also turns it off). */
  start?: boolean;
  /** Called with the engine once it is initialised (e.g. to evaluate by hand). */
  onEngine?: (engine: AlertingEngine) => void;
}

const iso = (ms: number): string => new Date(ms).toISOString();
const VERSION = '0.1.0';
const RULE_ID = '^[a-z0-9][a-z0-9-]{0,62}$';
const tags = { v1: ['alerting'], v2: ['alertmanager-v2'] };

/** Merge a partial config over the defaults, with the env vars a deployment sets. */
export function alertingConfigFrom(partial: Partial<AlertingConfig> = {}, env: NodeJS.ProcessEnv = process.env): AlertingConfig {
  const cfg: AlertingConfig = { ...defaultAlertingConfig, ...partial };
  if (!partial.receivers) {
    const receivers = [];
    if (env.REVOKESCOPE_ALERTMANAGER_URL) receivers.push({ name: 'alertmanager', type: 'alertmanager' as const, url: env.REVOKESCOPE_ALERTMANAGER_URL });
    for (const [i, url] of (env.REVOKESCOPE_WEBHOOK_URLS ?? '').split(',').map((s) => s.trim()).filter(Boolean).entries()) {
      receivers.push({ name: `webhook-${i + 1}`, type: 'webhook' as const, url });
    }
    cfg.receivers = receivers;
  }
  if (partial.evaluationIntervalMs === undefined && env.REVOKESCOPE_EVALUATION_INTERVAL_MS) {
    cfg.evaluationIntervalMs = Number(env.REVOKESCOPE_EVALUATION_INTERVAL_MS);
  }
  return cfg;
}

export async function alertingPlugin(app: FastifyInstance, opts: AlertingPluginOptions): Promise<void> {
  const config = alertingConfigFrom(opts.config);
  const engine = new AlertingEngine(opts.client, config, opts.metrics, opts.now ?? Date.now);
  await engine.init();
  opts.onEngine?.(engine);
  const readiness = (app as unknown as { registerReadinessCheck?: (name: string, fn: () => Promise<void> | void) => void }).registerReadinessCheck;
  readiness?.('alerting', () => { if (!engine.ready) throw new Error('alerting engine not initialised'); });
  app.addHook('onClose', async () => { await engine.stop(); });
  if (opts.start ?? true) engine.start();

  const fail = (reply: FastifyReply, e: unknown): FastifyReply => {
    if (e instanceof NotFoundError) return reply.code(404).send({ statusCode: 404, error: 'Not Found', message: e.message });
    if (e instanceof BadRequestError || e instanceof MatcherError || e instanceof ParamError) {
      return reply.code(400).send({ statusCode: 400, error: 'Bad Request', message: e.message });
    }
    throw e;
  };

  // ------------------------------------------------------------------ v1: rules
  const viewRule = (r: Rule): Record<string, unknown> => {
    const h = engine.health.get(r.id);
    return {
      ...r, query: { ...r.query, groupBy: r.query.groupBy ?? [] }, updatedAt: iso(r.updatedAt),
      health: h ? { state: h.lastError ? 'err' : 'ok', lastEvaluation: iso(h.lastEvaluation), evaluationMs: h.evaluationMs,
        lastError: h.lastError, series: h.series } : { state: 'unknown', lastError: '', series: 0 },
    };
  };
  type RuleBody = Omit<Rule, 'builtin' | 'updatedAt' | 'id'> & { id?: string };

  app.get('/api/v1/rules', {
    schema: { tags: tags.v1, summary: 'List alerting rules with their evaluation health',
      response: { 200: { type: 'object', required: ['rules'], properties: { rules: { type: 'array', items: ruleView } } } } },
  }, async () => ({ rules: engine.listRules().map(viewRule) }));

  app.get<{ Params: { id: string } }>('/api/v1/rules/:id', {
    schema: { tags: tags.v1, summary: 'One rule', params: idParam('id', RULE_ID), response: { 200: ruleView } },
  }, async (req, reply) => {
    const r = engine.getRule(req.params.id);
    if (!r) return fail(reply, new NotFoundError(`rule ${req.params.id} not found`));
    return viewRule(r);
  });

  app.post<{ Body: RuleBody }>('/api/v1/rules', {
    schema: { tags: tags.v1, summary: 'Create a rule (admin)', body: ruleInput, response: { 201: ruleView } },
  }, async (req, reply) => {
    const b = req.body;
    const id = b.id ?? `${b.name.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 40) || 'rule'}-${randomBytes(4).toString('hex')}`;
    try {
      const rule = await engine.putRule({ ...b, id, query: { ...b.query, groupBy: b.query.groupBy ?? [] } } as Rule, true);
      return reply.code(201).send(viewRule(rule));
    } catch (e) {
      if (e instanceof BadRequestError && /exists/.test(e.message)) {
        return reply.code(409).send({ statusCode: 409, error: 'Conflict', message: e.message });
      }
      return fail(reply, e);
    }
  });

  app.put<{ Params: { id: string }; Body: RuleBody }>('/api/v1/rules/:id', {
    schema: { tags: tags.v1, summary: 'Replace a rule, built-in ones included (admin)', params: idParam('id', RULE_ID), body: ruleInput,
      response: { 200: ruleView } },
  }, async (req, reply) => {
    if (req.body.id !== undefined && req.body.id !== req.params.id) return fail(reply, new BadRequestError('id in body differs from the path'));
    try {
      return viewRule(await engine.putRule({ ...req.body, id: req.params.id, query: { ...req.body.query, groupBy: req.body.query.groupBy ?? [] } } as Rule, false));
    } catch (e) { return fail(reply, e); }
  });

  app.delete<{ Params: { id: string } }>('/api/v1/rules/:id', {
    schema: { tags: tags.v1, summary: 'Delete a rule (admin); its firing alerts resolve at the next evaluation', params: idParam('id', RULE_ID),
      response: { 204: { type: 'null' } } },
  }, async (req, reply) => {
    try { await engine.deleteRule(req.params.id); } catch (e) { return fail(reply, e); }
    return reply.code(204).send();
  });

  // ------------------------------------------------------------------ v1: alerts (all states) + evaluation
  const viewAlert = (a: AlertRecord, now: number, budget: MatchBudget): Record<string, unknown> => ({
    fingerprint: a.fingerprint, ruleId: a.ruleId, state: a.state, labels: a.labels, annotations: a.annotations,
    value: Number.isFinite(a.value) ? a.value : 0,
    activeAt: iso(a.activeAt), ...(a.firedAt ? { firedAt: iso(a.firedAt) } : {}), ...(a.resolvedAt ? { resolvedAt: iso(a.resolvedAt) } : {}),
    updatedAt: iso(a.updatedAt), silencedBy: a.state === 'firing' ? engine.silencedBy(a.labels, now, budget) : [],
  });

  app.get<{ Querystring: { state?: string[]; filter?: string[]; rule?: string } }>('/api/v1/alerts', {
    schema: { tags: tags.v1, summary: 'Alerts in every state (pending, firing, resolved)',
      querystring: { type: 'object', additionalProperties: false, properties: {
        state: { type: 'array', items: { type: 'string', enum: ['pending', 'firing', 'resolved'] }, maxItems: 3 },
        filter: alertFilterQuery.properties.filter, rule: { type: 'string', maxLength: 64 } } },
      response: { 200: { type: 'object', required: ['alerts'], properties: { alerts: { type: 'array', items: alertView } } } } },
  }, async (req, reply) => {
    try {
      const budget = engine.matchBudget();
      const matchers = AlertingEngine.parseFilter(req.query.filter, budget);
      const now = engine.now();
      const states = req.query.state?.length ? new Set(req.query.state) : undefined;
      const out = [...engine.alerts.values()]
        .filter((a) => (!states || states.has(a.state)) && (!req.query.rule || a.ruleId === req.query.rule) && matchesAll(matchers, a.labels, budget))
        .sort((a, b) => a.activeAt - b.activeAt || a.fingerprint.localeCompare(b.fingerprint));
      return { alerts: out.map((a) => viewAlert(a, now, budget)) };
    } catch (e) { return fail(reply, e); }
  });

  app.post('/api/v1/alerts/evaluate', {
    schema: { tags: tags.v1, summary: 'Evaluate every rule now (admin)',
      response: { 200: { type: 'object', required: ['evaluatedAt', 'counts'], properties: {
        evaluatedAt: dateTimeSchema(), counts: { type: 'object', additionalProperties: { type: 'integer' } } } } } },
  }, async () => {
    await engine.evaluate();
    return { evaluatedAt: iso(engine.lastEvaluation), counts: engine.counts() };
  });

  app.get<{ Querystring: { limit: number; receiver?: string } }>('/api/v1/notifications', {
    schema: { tags: tags.v1, summary: 'Notification log (newest first)',
      querystring: { type: 'object', additionalProperties: false, properties: {
        limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 }, receiver: { type: 'string', maxLength: 128 } } },
      response: { 200: { type: 'object', required: ['notifications'], properties: { notifications: { type: 'array', items: {
        type: 'object', required: ['at', 'receiver', 'groupKey', 'status', 'alerts', 'attempts', 'ok', 'error', 'httpStatus'],
        properties: { at: dateTimeSchema(), receiver: { type: 'string' }, groupKey: { type: 'string' }, status: { type: 'string' },
          alerts: { type: 'integer' }, fingerprints: { type: 'array', items: { type: 'string' } }, attempts: { type: 'integer' },
          ok: { type: 'boolean' }, error: { type: 'string' }, httpStatus: { type: 'integer' } } } } } } } },
  }, async (req) => {
    const log = await engine.store.notificationLog(req.query.limit, req.query.receiver);
    return { notifications: log.map((e) => ({ ...e, at: iso(e.atMs) })) };
  });

  // ------------------------------------------------------------------ v2: Alertmanager compatible
  type AlertFilter = { active: boolean; silenced: boolean; inhibited: boolean; unprocessed: boolean; filter?: string[]; receiver?: string };

  /** Firing alerts as gettableAlerts, filtered like Alertmanager's GET /alerts. */
  const gettableAlerts = (q: AlertFilter): { alert: AlertRecord; view: Record<string, unknown>; receivers: string[] }[] => {
    const budget = engine.matchBudget();
    const matchers = AlertingEngine.parseFilter(q.filter, budget);
    let receiverRe: LabelRegex | undefined;
    if (q.receiver !== undefined && q.receiver !== '') {
      try { receiverRe = compileMatcherRegex(q.receiver, budget); } catch (e) { throw new BadRequestError((e as Error).message); }
    }
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

  app.get<{ Querystring: AlertFilter }>('/api/v2/alerts', {
    schema: { tags: tags.v2, operationId: 'getAlerts', summary: 'Get a list of alerts (Alertmanager v2)', querystring: alertFilterQuery,
      response: { 200: { type: 'array', items: gettableAlert } } },
  }, async (req, reply) => {
    try { return gettableAlerts(req.query).map((x) => x.view); } catch (e) { return fail(reply, e); }
  });

  app.get<{ Querystring: AlertFilter }>('/api/v2/alerts/groups', {
    schema: { tags: tags.v2, operationId: 'getAlertGroups', summary: 'Get a list of alert groups (Alertmanager v2)',
      querystring: alertFilterQuery, response: { 200: { type: 'array', items: alertGroup } } },
  }, async (req, reply) => {
    let list;
    try { list = gettableAlerts(req.query); } catch (e) { return fail(reply, e); }
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

  const viewSilence = (s: Silence): Record<string, unknown> => ({
    id: s.id, status: { state: engine.silenceState(s) }, updatedAt: iso(s.updatedAt), matchers: s.matchers,
    startsAt: iso(s.startsAt), endsAt: iso(s.endsAt), createdBy: s.createdBy, comment: s.comment,
  });
  const stateOrder = { active: 0, pending: 1, expired: 2 } as const;

  app.get<{ Querystring: { filter?: string[] } }>('/api/v2/silences', {
    schema: { tags: tags.v2, operationId: 'getSilences', summary: 'Get a list of silences (Alertmanager v2)',
      querystring: { type: 'object', additionalProperties: false, properties: { filter: alertFilterQuery.properties.filter } },
      response: { 200: { type: 'array', items: gettableSilence } } },
  }, async (req, reply) => {
    let list;
    try {
      const budget = engine.matchBudget();
      const matchers = AlertingEngine.parseFilter(req.query.filter, budget);
      // like Alertmanager: a silence passes when each filter matcher equals one of its matchers' label/value
      list = engine.listSilences().filter((s) => matchers.every((m) => {
        const labels = Object.fromEntries(s.matchers.filter((sm) => sm.name === m.name).map((sm) => [sm.name, sm.value]));
        return labels[m.name] !== undefined && matchesAll([m], labels, budget);
      }));
    } catch (e) { return fail(reply, e); }
    const now = engine.now();
    list.sort((a, b) => stateOrder[engine.silenceState(a, now)] - stateOrder[engine.silenceState(b, now)] || a.endsAt - b.endsAt);
    return list.map(viewSilence);
  });

  app.post<{ Body: { id?: string; matchers: Silence['matchers']; startsAt: string; endsAt: string; createdBy: string; comment: string } }>(
    '/api/v2/silences', {
      schema: { tags: tags.v2, operationId: 'postSilences', summary: 'Post a new silence or update an existing one (admin)',
        body: postableSilence,
        response: { 200: { type: 'object', required: ['silenceID'], properties: { silenceID: { type: 'string' } } } } },
    }, async (req, reply) => {
      const b = req.body;
      try {
        const silenceID = await engine.upsertSilence({ id: b.id, matchers: b.matchers, startsAt: parseTime('body/startsAt', b.startsAt)!,
          endsAt: parseTime('body/endsAt', b.endsAt)!,
          createdBy: b.createdBy, comment: b.comment });
        return { silenceID };
      } catch (e) { return fail(reply, e); }
    });

  app.get<{ Params: { silenceID: string } }>('/api/v2/silence/:silenceID', {
    schema: { tags: tags.v2, operationId: 'getSilence', summary: 'Get a silence by its ID',
      params: { type: 'object', required: ['silenceID'], properties: { silenceID: { type: 'string', format: 'uuid' } } },
      response: { 200: gettableSilence } },
  }, async (req, reply) => {
    const s = engine.getSilence(req.params.silenceID);
    if (!s) return fail(reply, new NotFoundError(`silence ${req.params.silenceID} not found`));
    return viewSilence(s);
  });

  app.delete<{ Params: { silenceID: string } }>('/api/v2/silence/:silenceID', {
    schema: { tags: tags.v2, operationId: 'deleteSilence', summary: 'Expire a silence by its ID (admin)',
      params: { type: 'object', required: ['silenceID'], properties: { silenceID: { type: 'string', format: 'uuid' } } },
      response: { 200: { type: 'null', description: 'Expire silence response' } } },
  }, async (req, reply) => {
    try { await engine.expireSilence(req.params.silenceID); } catch (e) { return fail(reply, e); }
    return reply.code(200).send();
  });

  app.get('/api/v2/status', {
    schema: { tags: tags.v2, operationId: 'getStatus', summary: 'Status of this alerting API (Alertmanager v2 shape)',
      response: { 200: alertmanagerStatus } },
  }, async () => ({
    cluster: { name: 'revokescope', status: 'disabled', peers: [] },
    versionInfo: { branch: 'main', buildDate: '', buildUser: 'revokescope', goVersion: `node${process.versions.node}`, revision: '', version: VERSION },
    config: { original: configText(config) },
    uptime: iso(engine.startedAt),
  }));

  app.get('/api/v2/receivers', {
    schema: { tags: tags.v2, operationId: 'getReceivers', summary: 'Get list of all receivers',
      response: { 200: { type: 'array', items: { type: 'object', required: ['name'], properties: { name: { type: 'string' } } } } } },
  }, async () => engine.notifier.receiverNames().map((name) => ({ name })));
}

function dateTimeSchema() { return { type: 'string', format: 'date-time' } as const; }

/** The routing part of the configuration, Alertmanager-style YAML (URLs without credentials or headers). */
function configText(c: AlertingConfig): string {
  const lines = ['route:', `  receiver: ${DEFAULT_RECEIVER}`, `  group_by: [${c.groupBy.join(', ')}]`,
    `  repeat_interval: ${Math.round(c.repeatIntervalMs / 1000)}s`, 'receivers:', `- name: ${DEFAULT_RECEIVER}`];
  for (const r of c.receivers) {
    let url = r.url;
    try { const u = new URL(r.url); u.username = ''; u.password = ''; url = u.toString(); } catch { /* keep */ }
    lines.push(`- name: ${r.name}`, `  # ${r.type}`, `  webhook_configs: [{ url: '${url}', send_resolved: ${r.sendResolved !== false} }]`);
  }
  return lines.join('\n') + '\n';
}
