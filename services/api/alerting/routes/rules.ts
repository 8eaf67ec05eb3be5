// /api/v1/rules: alerting rules CRUD, each with its evaluation health.
import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { BadParameter, UnknownId } from '../../errors.js';
import { ALERTING_DEPENDENCIES } from '../../plugins.js';
import { typed } from '../../types.js';
import { idParam, ruleInput, ruleView } from '../schemas.js';
import type { Rule } from '../types.js';
import { iso, RULE_ID, tags } from './common.js';

async function rules(app: FastifyInstance): Promise<void> {
  const engine = app.alerting;
  const api = typed(app);
  const viewRule = (r: Rule): Record<string, unknown> => {
    const h = engine.health.get(r.id);
    return {
      ...r, query: { ...r.query, groupBy: r.query.groupBy ?? [] }, updatedAt: iso(r.updatedAt),
      health: h ? { state: h.lastError ? 'err' : 'ok', lastEvaluation: iso(h.lastEvaluation), evaluationMs: h.evaluationMs,
        lastError: h.lastError, series: h.series } : { state: 'unknown', lastError: '', series: 0 },
    };
  };

  api.get('/api/v1/rules', {
    schema: { tags: tags.v1, summary: 'List alerting rules with their evaluation health',
      response: { 200: { type: 'object', required: ['rules'], properties: { rules: { type: 'array', items: ruleView } } } } },
  }, async () => ({ rules: engine.listRules().map(viewRule) }));

  api.get('/api/v1/rules/:id', {
    schema: { tags: tags.v1, summary: 'One rule', params: idParam('id', RULE_ID), response: { 200: ruleView } },
  }, async (req) => {
    const r = engine.getRule(req.params.id);
    if (!r) throw new UnknownId(`rule ${req.params.id} not found`);
    return viewRule(r);
  });

  api.post('/api/v1/rules', {
    schema: { tags: tags.v1, summary: 'Create a rule (admin)', body: ruleInput, response: { 201: ruleView } },
  }, async (req, reply) => {
    const b = req.body;
    const id = b.id ?? `${b.name.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 40) || 'rule'}-${randomBytes(4).toString('hex')}`;
    const rule = await engine.putRule({ ...b, id, query: { ...b.query, groupBy: b.query.groupBy ?? [] } } as Rule, true);
    return reply.code(201).send(viewRule(rule));
  });

  api.put('/api/v1/rules/:id', {
    schema: { tags: tags.v1, summary: 'Replace a rule, built-in ones included (admin)', params: idParam('id', RULE_ID), body: ruleInput,
      response: { 200: ruleView } },
  }, async (req) => {
    if (req.body.id !== undefined && req.body.id !== req.params.id) throw new BadParameter('id in body differs from the path');
    return viewRule(await engine.putRule({ ...req.body, id: req.params.id, query: { ...req.body.query, groupBy: req.body.query.groupBy ?? [] } } as Rule, false));
  });

  api.delete('/api/v1/rules/:id', {
    schema: { tags: tags.v1, summary: 'Delete a rule (admin); its firing alerts resolve at the next evaluation', params: idParam('id', RULE_ID),
      response: { 204: { type: 'null' } } },
  }, async (req, reply) => {
    await engine.deleteRule(req.params.id);
    return reply.code(204).send();
  });
}

export const rulesPlugin = fp(rules, { name: 'revokescope-rules', fastify: '5.x', encapsulate: true, dependencies: ALERTING_DEPENDENCIES });
