// GET /api/v1/latency: p50/p90/p99/p99.9/max of revoke, hold, wait, zap or move time grouped by any of
// host, driver, kernel and trigger over a time range, merged from the per-minute rollup states.
import type { FastifyPluginAsync } from 'fastify';
import { LATENCY_DIMENSIONS, type LatencyDimension, type StoreReader } from '../../store/queries.js';
import { LATENCY_METRICS, type LatencyMetric } from '../../store/schema.js';
import { BadRequest, errorSchema, label, parseRange, timeParam, triggerNames } from '../schemas.js';

interface Query {
  from?: string; to?: string; metric: LatencyMetric; group_by?: string;
  host?: string; driver?: string; kernel?: string; trigger?: string;
}

const dims = Object.keys(LATENCY_DIMENSIONS).join('|');

export const latencyRoutes: FastifyPluginAsync<{ reader: StoreReader }> = async (app, { reader }) => {
  app.get<{ Querystring: Query }>('/api/v1/latency', {
    schema: {
      summary: 'Latency percentiles by host, driver, kernel and/or trigger (per-minute rollups)',
      tags: ['latency'],
      querystring: {
        type: 'object', additionalProperties: false,
        properties: {
          from: timeParam, to: timeParam,
          metric: { type: 'string', enum: Object.keys(LATENCY_METRICS), default: 'revoke' },
          group_by: { type: 'string', maxLength: 64, pattern: `^((${dims})(,(${dims}))*)?$`, description: 'comma-separated: host, driver, kernel, trigger' },
          host: label, driver: label, kernel: label, trigger: { type: 'string', enum: triggerNames },
        },
      },
      response: {
        200: {
          type: 'object', required: ['metric', 'groupBy', 'quantiles', 'rows'],
          properties: {
            metric: { type: 'string' },
            groupBy: { type: 'array', items: { type: 'string' } },
            quantiles: { type: 'array', items: { type: 'number' } },
            rows: {
              type: 'array',
              items: {
                type: 'object',
                properties: {
                  group: { type: 'object', additionalProperties: { type: 'string' } },
                  episodes: { type: 'integer' }, count: { type: 'integer' },
                  p50Ns: { type: 'integer' }, p90Ns: { type: 'integer' }, p99Ns: { type: 'integer' }, p999Ns: { type: 'integer' },
                  maxNs: { type: 'integer' },
                },
                required: ['group', 'episodes', 'count', 'p50Ns', 'p90Ns', 'p99Ns', 'p999Ns', 'maxNs'],
              },
            },
          },
        },
        400: errorSchema,
      },
    },
  }, async (req) => {
    const q = req.query;
    const groupBy = (q.group_by ? q.group_by.split(',') : []) as LatencyDimension[];
    if (new Set(groupBy).size !== groupBy.length) throw new BadRequest('querystring/group_by names a dimension twice');
    const rows = await reader.latency({
      ...parseRange(q), metric: q.metric, groupBy, host: q.host, driver: q.driver, kernel: q.kernel, trigger: q.trigger,
    });
    return {
      metric: q.metric, groupBy, quantiles: [0.5, 0.9, 0.99, 0.999],
      rows: rows.map((r) => ({ group: r.group, episodes: r.episodes, count: r.count, p50Ns: r.p50, p90Ns: r.p90,
        p99Ns: r.p99, p999Ns: r.p999, maxNs: r.max })),
    };
  });
};
