// GET /api/v1/latency: p50/p90/p99/p99.9/max of revoke, hold, wait, zap or move time grouped by any of
// host, driver, kernel and trigger over a time range, merged from the rollup states (minute, hour, day tiers:
// StoreReader.latency). Results are shared between identical requests for about a second (LatencyCache).
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { LATENCY_DIMENSIONS, type LatencyDimension, type LatencyQuery, type LatencyRow, type StoreReader } from '../../store/queries.js';
import { LATENCY_METRICS, type LatencyMetric } from '../../store/schema.js';
import { BadParameter } from '../errors.js';
import { RESOURCE_DEPENDENCIES } from '../plugins.js';
import { errorSchema, label, parseRange, timeParam, triggerNames } from '../schemas.js';
import { typed } from '../types.js';


const dims = Object.keys(LATENCY_DIMENSIONS).join('|');

export interface LatencyRoutesOptions {
  /** A result is served from memory for this long (ms; default 1000; 0 = every request asks the store). */
  freshMs?: number;
  /** After that, for this much longer it is still served while one request refreshes it (stale-while-revalidate;
   * default 10000 ms). Older results are never served. */
  staleMs?: number;
}

/** Results per query (the range snapped to minutes, as the rollups are): a dashboard's viewers share them. */
class LatencyCache {
  private readonly entries = new Map<string, { at: number; rows?: LatencyRow[]; refreshing?: Promise<LatencyRow[]> }>();
  constructor(private readonly reader: StoreReader, private readonly freshMs: number, private readonly staleMs: number) {}

  async get(q: LatencyQuery): Promise<{ rows: LatencyRow[]; at: number }> {
    if (this.freshMs <= 0) return { rows: await this.reader.latency(q), at: Date.now() };
    const key = JSON.stringify([q.metric, q.groupBy, q.host, q.driver, q.kernel, q.trigger,
      q.fromMs === undefined ? null : Math.floor(q.fromMs / 60_000), q.toMs === undefined ? null : Math.ceil(q.toMs / 60_000)]);
    const now = Date.now();
    const e = this.entries.get(key);
    if (e?.rows && now - e.at < this.freshMs) return { rows: e.rows, at: e.at };
    if (e?.rows && now - e.at < this.freshMs + this.staleMs) {
      if (!e.refreshing) this.refresh(key, q).catch(() => {}); // the next request retries a failed refresh
      return { rows: e.rows, at: e.at };
    }
    const rows = await (e?.refreshing ?? this.refresh(key, q));
    return { rows, at: this.entries.get(key)?.at ?? now };
  }

  private refresh(key: string, q: LatencyQuery): Promise<LatencyRow[]> {
    const started = Date.now();
    const entry = this.entries.get(key) ?? { at: 0 };
    const p = this.reader.latency(q).then((rows) => {
      this.entries.delete(key); // re-insert: the Map's order is least recently refreshed first
      this.entries.set(key, { at: started, rows });
      while (this.entries.size > 1000) this.entries.delete(this.entries.keys().next().value!);
      return rows;
    }, (err) => {
      if (entry.refreshing === p) entry.refreshing = undefined;
      if (!entry.rows && this.entries.get(key) === entry) this.entries.delete(key);
      throw err;
    });
    entry.refreshing = p;
    if (!this.entries.has(key)) this.entries.set(key, entry);
    return p;
  }
}

async function latency(app: FastifyInstance, { freshMs = 1000, staleMs = 10_000 }: LatencyRoutesOptions): Promise<void> {
  const cache = new LatencyCache(app.store.reader, freshMs, staleMs);
  typed(app).get('/api/v1/latency', {
    schema: {
      summary: 'Latency percentiles by host, driver, kernel and/or trigger (minute resolution, from the minute/hour/day rollups)',
      tags: ['latency'],
      querystring: {
        type: 'object', additionalProperties: false,
        properties: {
          from: timeParam, to: timeParam,
          metric: { type: 'string', enum: Object.keys(LATENCY_METRICS) as LatencyMetric[], default: 'revoke' },
          group_by: { type: 'string', maxLength: 64, pattern: `^((${dims})(,(${dims}))*)?$`, description: 'comma-separated: host, driver, kernel, trigger' },
          host: label, driver: label, kernel: label, trigger: { type: 'string', enum: triggerNames },
        },
      } as const,
      response: {
        200: {
          type: 'object', required: ['metric', 'groupBy', 'quantiles', 'rows', 'asOf'],
          properties: {
            metric: { type: 'string' },
            asOf: { type: 'string', format: 'date-time', description: 'when the store computed these rows (results are shared for about a second)' },
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
    if (new Set(groupBy).size !== groupBy.length) throw new BadParameter('querystring/group_by names a dimension twice');
    const { rows, at } = await cache.get({
      ...parseRange(q), metric: q.metric, groupBy, host: q.host, driver: q.driver, kernel: q.kernel, trigger: q.trigger,
    });
    return {
      metric: q.metric, groupBy, quantiles: [0.5, 0.9, 0.99, 0.999], asOf: new Date(at).toISOString(),
      rows: rows.map((r) => ({ group: r.group, episodes: r.episodes, count: r.count, p50Ns: r.p50, p90Ns: r.p90,
        p99Ns: r.p99, p999Ns: r.p999, maxNs: r.max })),
    };
  });
}

export const latencyRoutes = fp(latency, { name: 'revokescope-latency', fastify: '5.x', encapsulate: true, dependencies: RESOURCE_DEPENDENCIES });
