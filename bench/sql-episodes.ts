// The episode computation of docs/rules.md written as ClickHouse SQL (window functions) over raw events in chDB,
// checked against the correlator on the same trace, and timed beside it (issue 2).
// SQL covers the metrics only (no mapping state, findings, trigger attachment or reordering) and kernels
// ≥ 6.11, where every zap runs under memory_lock (pre-6.11 zaps precede down_write).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { simulate } from '../collectors/simulator/index.js';
import { analyzeBatches } from '../services/core/analysis.js';
import { ZapTarget, bodyOf, zapsBeforeLock, type Episode, type EventBatch } from '../services/core/model.js';
import { connect } from '../services/store/connect.js';

type Column = 'hostname' | 'boot_id' | 'device' | 'ts_ns' | 'rank' | 'kind' | 'wait_ns' | 'duration_ns' | 'revoked' | 'target'
  | 'dmabuf_count' | 'importer_count';

const RANK: Record<string, number> = { deviceInfo: 0, barMmap: 1, trigger: 2, lockAcquire: 3, barFault: 4, zap: 5,
  dmabufRevoke: 6, moveNotify: 7, lockRelease: 8, barMunmap: 9 };

export const EPISODES_SQL = `
WITH numbered AS (
  SELECT *, sum(kind = 'lockAcquire') OVER (PARTITION BY hostname, boot_id, device ORDER BY ts_ns, rank
                                            ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS ep
  FROM raw_events
), bounded AS (
  SELECT *, min(if(kind = 'lockRelease', ts_ns, toUInt64(18446744073709551615))) OVER (PARTITION BY hostname, boot_id, device, ep) AS rel
  FROM numbered WHERE ep > 0
)
SELECT hostname, boot_id, device,
  minIf(ts_ns, kind = 'lockAcquire') AS acquire_ts_ns,
  any(rel) AS release_ts_ns,
  release_ts_ns - acquire_ts_ns AS hold_ns,
  anyIf(wait_ns, kind = 'lockAcquire') AS lock_wait_ns,
  sumIf(duration_ns, kind = 'zap' AND target != {dmabuf:UInt8}) AS zap_ns,
  countIf(kind = 'zap' AND target != {dmabuf:UInt8}) AS zap_count,
  sumIf(duration_ns, kind = 'dmabufRevoke' AND revoked = 1) AS dmabuf_revoke_ns,
  sumIf(dmabuf_count, kind = 'dmabufRevoke' AND revoked = 1) AS dmabuf_count,
  sumIf(duration_ns, kind = 'moveNotify') AS move_ns,
  sumIf(importer_count, kind = 'moveNotify') AS importer_count,
  countIf(kind = 'zap' OR (kind = 'dmabufRevoke' AND revoked = 1)) > 0 AS revoked_something,
  if(revoked_something, maxIf(ts_ns + duration_ns, kind = 'zap' OR (kind = 'dmabufRevoke' AND revoked = 1)) - acquire_ts_ns, 0) AS revoke_ns
FROM bounded
WHERE ts_ns <= rel AND rel != toUInt64(18446744073709551615)
GROUP BY hostname, boot_id, device, ep
`;

type Row = Record<Column, string | number>;

function rows(batches: EventBatch[]): Row[] {
  const out: Row[] = [];
  for (const b of batches) {
    if (zapsBeforeLock(b.host?.kernelRelease ?? '')) continue;
    for (const ev of b.events ?? []) {
      const kind = bodyOf(ev);
      if (!kind || !ev.device) continue;
      const z = ev.zap, r = ev.dmabufRevoke, m = ev.moveNotify;
      out.push({
        hostname: b.host?.hostname ?? '', boot_id: b.host?.bootId ?? '', device: ev.device, ts_ns: ev.tsNs ?? 0, rank: RANK[kind]!, kind,
        wait_ns: ev.lockAcquire?.waitNs ?? 0, duration_ns: z?.durationNs ?? r?.durationNs ?? m?.durationNs ?? 0,
        revoked: r?.revoked ? 1 : 0, target: z?.target ?? 0, dmabuf_count: r?.dmabufCount ?? 0, importer_count: m?.importerCount ?? 0,
      });
    }
  }
  return out;
}

const key = (h: string, b: string, d: string, t: number | string) => `${h}|${b}|${d}|${t}`;

export interface SqlEpisodesBench {
  events: number;
  episodesCompared: number;
  mismatches: number;
  correlatorSeconds: number;
  sqlQuerySeconds: number;
  sqlInsertSeconds: number;
  sqlVsCorrelator: number;
}

export async function benchSqlEpisodes(opts: { hosts?: number; durationNs?: number; seed?: number } = {}): Promise<SqlEpisodesBench> {
  const { batches } = simulate({ hosts: opts.hosts ?? 200, durationNs: opts.durationNs ?? 120e9, seed: opts.seed ?? 1, faults: false });
  let analysis = analyzeBatches(batches); // warm-up run; the best of three is reported
  let correlatorSeconds = Infinity;
  for (let i = 0; i < 3; i++) {
    const t0 = process.hrtime.bigint();
    analysis = analyzeBatches(batches);
    correlatorSeconds = Math.min(correlatorSeconds, Number(process.hrtime.bigint() - t0) / 1e9);
  }
  const dir = mkdtempSync(join(tmpdir(), 'revokescope-sql-'));
  const { client } = await connect({ dataDir: dir });
  try {
    await client.command({ query: `CREATE TABLE raw_events (hostname LowCardinality(String), boot_id LowCardinality(String),
      device LowCardinality(String), ts_ns UInt64, rank UInt8, kind LowCardinality(String), wait_ns UInt64, duration_ns UInt64,
      revoked UInt8, target UInt8, dmabuf_count UInt32, importer_count UInt32)
      ENGINE = MergeTree ORDER BY (hostname, boot_id, device, ts_ns)` });
    const data = rows(batches);
    const t1 = process.hrtime.bigint();
    for (let i = 0; i < data.length; i += 100_000) {
      await client.insert({ table: 'raw_events', values: data.slice(i, i + 100_000), format: 'JSONEachRow' });
    }
    const sqlInsertSeconds = Number(process.hrtime.bigint() - t1) / 1e9;
    let sqlRows: Record<string, string | number | boolean>[] = [];
    let sqlQuerySeconds = Infinity;
    for (let i = 0; i < 3; i++) {
      const t2 = process.hrtime.bigint();
      const rs = await client.query({ query: EPISODES_SQL, query_params: { dmabuf: ZapTarget.DMABUF }, format: 'JSONEachRow' });
      sqlRows = await rs.json<Record<string, string | number | boolean>>();
      sqlQuerySeconds = Math.min(sqlQuerySeconds, Number(process.hrtime.bigint() - t2) / 1e9);
    }
    const bySql = new Map(sqlRows.map((r) => [key(String(r.hostname), String(r.boot_id), String(r.device), String(r.acquire_ts_ns)), r]));
    let compared = 0, mismatches = 0;
    const fields: [keyof Episode, string][] = [['releaseTsNs', 'release_ts_ns'], ['holdNs', 'hold_ns'], ['lockWaitNs', 'lock_wait_ns'],
      ['zapNs', 'zap_ns'], ['zapCount', 'zap_count'], ['dmabufRevokeNs', 'dmabuf_revoke_ns'], ['dmabufCount', 'dmabuf_count'],
      ['moveNs', 'move_ns'], ['importerCount', 'importer_count'], ['revokeNs', 'revoke_ns']];
    for (const e of analysis.episodes) {
      if (zapsBeforeLock(e.kernelRelease)) continue;
      compared++;
      const r = bySql.get(key(e.hostname, e.bootId, e.device, e.acquireTsNs));
      if (!r || fields.some(([a, b]) => Number(e[a]) !== Number(r[b]))) mismatches++;
    }
    return { events: data.length, episodesCompared: compared, mismatches, correlatorSeconds, sqlQuerySeconds, sqlInsertSeconds,
      sqlVsCorrelator: Number((sqlQuerySeconds / correlatorSeconds).toFixed(2)) };
  } finally {
    await client.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
