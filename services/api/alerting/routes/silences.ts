// /api/v2/silences, /api/v2/silence/{id}: Alertmanager v2 silences (list, create or update, get, expire).
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { UnknownId } from '../../errors.js';
import { parseTime } from '../../params.js';
import { ALERTING_DEPENDENCIES } from '../../plugins.js';
import { typed } from '../../types.js';
import { AlertingEngine } from '../engine.js';
import { matchesAll } from '../matchers.js';
import { alertFilterQuery, gettableSilence, postableSilence } from '../schemas.js';
import type { Silence } from '../types.js';
import { iso, tags } from './common.js';

const silenceIdParam = {
  type: 'object', required: ['silenceID'], properties: { silenceID: { type: 'string', format: 'uuid' } },
} as const;
const stateOrder = { active: 0, pending: 1, expired: 2 } as const;

async function silences(app: FastifyInstance): Promise<void> {
  const engine = app.alerting;
  const api = typed(app);
  const viewSilence = (s: Silence): Record<string, unknown> => ({
    id: s.id, status: { state: engine.silenceState(s) }, updatedAt: iso(s.updatedAt), matchers: s.matchers,
    startsAt: iso(s.startsAt), endsAt: iso(s.endsAt), createdBy: s.createdBy, comment: s.comment,
  });

  api.get('/api/v2/silences', {
    schema: { tags: tags.v2, operationId: 'getSilences', summary: 'Get a list of silences (Alertmanager v2)',
      querystring: { type: 'object', additionalProperties: false, properties: { filter: alertFilterQuery.properties.filter } } as const,
      response: { 200: { type: 'array', items: gettableSilence } } },
  }, async (req) => {
    const budget = engine.matchBudget();
    const matchers = AlertingEngine.parseFilter(req.query.filter, budget);
    // like Alertmanager: a silence passes when each filter matcher equals one of its matchers' label/value
    const list = engine.listSilences().filter((s) => matchers.every((m) => {
      const labels = Object.fromEntries(s.matchers.filter((sm) => sm.name === m.name).map((sm) => [sm.name, sm.value]));
      return labels[m.name] !== undefined && matchesAll([m], labels, budget);
    }));
    const now = engine.now();
    list.sort((a, b) => stateOrder[engine.silenceState(a, now)] - stateOrder[engine.silenceState(b, now)] || a.endsAt - b.endsAt);
    return list.map(viewSilence);
  });

  api.post('/api/v2/silences', {
    schema: { tags: tags.v2, operationId: 'postSilences', summary: 'Post a new silence or update an existing one (admin)',
      body: postableSilence,
      response: { 200: { type: 'object', required: ['silenceID'], properties: { silenceID: { type: 'string' } } } } },
  }, async (req) => {
    const b = req.body;
    const silenceID = await engine.upsertSilence({ id: b.id, matchers: b.matchers, startsAt: parseTime('body/startsAt', b.startsAt)!,
      endsAt: parseTime('body/endsAt', b.endsAt)!, createdBy: b.createdBy, comment: b.comment });
    return { silenceID };
  });

  api.get('/api/v2/silence/:silenceID', {
    schema: { tags: tags.v2, operationId: 'getSilence', summary: 'Get a silence by its ID', params: silenceIdParam,
      response: { 200: gettableSilence } },
  }, async (req) => {
    const s = engine.getSilence(req.params.silenceID);
    if (!s) throw new UnknownId(`silence ${req.params.silenceID} not found`);
    return viewSilence(s);
  });

  api.delete('/api/v2/silence/:silenceID', {
    schema: { tags: tags.v2, operationId: 'deleteSilence', summary: 'Expire a silence by its ID (admin)', params: silenceIdParam,
      response: { 200: { type: 'null', description: 'Expire silence response' } } },
  }, async (req, reply) => {
    await engine.expireSilence(req.params.silenceID);
    return reply.code(200).send();
  });
}

export const silencesPlugin = fp(silences, { name: 'revokescope-silences', fastify: '5.x', encapsulate: true, dependencies: ALERTING_DEPENDENCIES });
