// GET /api/v1/hosts: collector health per host (last seen, rates, drops, loss, lag, capabilities, kernel).
import type { ClickHouseClient } from '@clickhouse/client';
import type { FastifyInstance } from 'fastify';
import { parseDurationMs } from '../alerting/duration.js';
import { hostsQuery } from '../alerting/queries.js';

export interface HostsPluginOptions { client: ClickHouseClient; database?: string; now?: () => number }

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

export async function hostsPlugin(app: FastifyInstance, opts: HostsPluginOptions): Promise<void> {
  const now = opts.now ?? Date.now;
  app.get<{ Querystring: { window: string; host?: string; limit: number } }>('/api/v1/hosts', {
    schema: {
      tags: ['hosts'], summary: 'Collector health per host (newest sample; rates over the current boot in the window)',
      querystring: { type: 'object', additionalProperties: false, properties: {
        window: { type: 'string', pattern: '^((\\d+)(ms|s|m|h|d|w))+$', maxLength: 32, default: '1h', description: 'Hosts seen within this window' },
        host: { type: 'string', minLength: 1, maxLength: 256 },
        limit: { type: 'integer', minimum: 1, maximum: 10_000, default: 1000 } } },
      response: { 200: { type: 'object', required: ['hosts'], properties: { hosts: { type: 'array', items: hostSchema } } } },
    },
  }, async (req, reply) => {
    let windowMs: number;
    try { windowMs = parseDurationMs(req.query.window); } catch (e) {
      return reply.code(400).send({ statusCode: 400, error: 'Bad Request', message: `querystring/window: ${(e as Error).message}` });
    }
    return { hosts: await hostsQuery(opts.client, opts.database ?? 'revokescope', { nowMs: now(), windowMs, host: req.query.host, limit: req.query.limit }) };
  });
}
