// GET /api/v1/hosts: collector health per host (last seen, rates, drops, loss, lag, capabilities, kernel).
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { parseDurationMs } from '../alerting/duration.js';
import { hostsQuery } from '../alerting/queries.js';
import { BadParameter } from '../errors.js';
import { RESOURCE_DEPENDENCIES } from '../plugins.js';
import { typed } from '../types.js';

const hostSchema = {
  type: 'object',
  required: ['hostname', 'bootId', 'kernelRelease', 'collectorVersion', 'capabilities', 'lastSeen', 'silentSeconds', 'lastTsNs', 'nowNs',
    'events', 'dropped', 'lost', 'lag', 'eventsPerSecond', 'dropsPerSecond'],
  properties: {
    hostname: { type: 'string' }, bootId: { type: 'string' }, kernelRelease: { type: 'string' }, collectorVersion: { type: 'string' },
    capabilities: { type: 'array', items: { type: 'string' } },
    lastSeen: { type: 'string', format: 'date-time', description: 'when the host\'s clock (heartbeat now_ns or newest event ts) last advanced' },
    silentSeconds: { type: 'number', description: 'seconds since lastSeen' },
    lastTsNs: { type: 'string', pattern: '^[0-9]+$', description: 'newest event ts (host CLOCK_MONOTONIC ns)' },
    nowNs: { type: 'string', pattern: '^[0-9]+$', description: 'collector clock of the newest batch, heartbeats included (EventBatch.now_ns; 0: not sent)' }, events: { type: 'number' }, dropped: { type: 'number' }, lost: { type: 'number' },
    lag: { type: 'number' }, eventsPerSecond: { type: 'number' }, dropsPerSecond: { type: 'number' },
  },
} as const;

const hostsQuerystring = {
  type: 'object', additionalProperties: false, properties: {
    window: { type: 'string', pattern: '^((\\d+)(ms|s|m|h|d|w))+$', maxLength: 32, default: '1h', description: 'Hosts seen within this window' },
    host: { type: 'string', minLength: 1, maxLength: 256 },
    limit: { type: 'integer', minimum: 1, maximum: 10_000, default: 1000 } },
} as const;

async function hosts(app: FastifyInstance): Promise<void> {
  const { client, database, now } = app.store;
  typed(app).get('/api/v1/hosts', {
    schema: {
      tags: ['hosts'], summary: 'Collector health per host (newest sample; rates over the current boot in the window)',
      querystring: hostsQuerystring,
      response: { 200: { type: 'object', required: ['hosts'], properties: { hosts: { type: 'array', items: hostSchema } } } },
    },
  }, async (req) => {
    let windowMs: number;
    try { windowMs = parseDurationMs(req.query.window); } catch (e) { throw new BadParameter(`querystring/window: ${(e as Error).message}`); }
    return { hosts: await hostsQuery(client, database, { nowMs: now(), windowMs, host: req.query.host, limit: req.query.limit }) };
  });
}

export const hostsPlugin = fp(hosts, { name: 'revokescope-hosts', fastify: '5.x', encapsulate: true, dependencies: RESOURCE_DEPENDENCIES });
