// The kernel-rollout dashboard's A/B row: the numbers `revokescope compare` prints, computed in ClickHouse from the
// same rows the same way (services/report/compare.ts; docs/compare.md): per trigger × driver stratum the nearest-rank
// quantile of a uniform subsample (cityHash64(episode_id), at most COMPARE_MAX_SAMPLES values) with ties spread over
// the clock's resolution, a stratum compared only where both kernels have enough values around the quantile and two
// hosts or more, the overall ratio weighted by the baseline's mix; finding rates per 1000 episodes, the candidate's
// standardized to the baseline's mix. Intervals and p-values come from the command and the latency_regression rule.
import type { PanelSpec } from './builder.js';
import { inVar } from './builder.js';
import { T } from './sql.js';
import { COMPARE_MAX_SAMPLES } from '../services/report/compare.js';
import { SPREAD_Z } from '../services/report/stats.js';
import { MEASURED_WHEN } from '../services/store/queries.js';

type Side = 'baseline' | 'candidate';

const Q = 'toFloat64(${quantile:singlequote})';
const HOLD = "${metric:singlequote} = 'hold'";
const kernel = (side: Side): string => `kernel_release = \${${side}:singlequote}`;
const episodesWhere = (side: Side): string => `${kernel(side)} AND $__timeFilter(time) AND ${inVar('driver', 'driver')}`;

/** One side per stratum: measured count (all episodes), and from the subsample the values' count, hosts and the
 * quantile with ties spread (stats.spreadTies at the quantile's rank), and whether the stratum can be compared. */
function side(s: Side): string {
  return `SELECT c.trigger AS trigger, c.driver AS driver, c.n_all AS n_all, length(v.s) AS n, v.hosts AS hosts,
    toUInt64(greatest(1, least(toFloat64(n), ceil(${Q} * n - 1e-9)))) AS k,
    ${SPREAD_Z} * sqrt(n * ${Q} * (1 - ${Q})) AS spread,
    floor(n * ${Q} - spread + 1e-9) AS lo, ceil(n * ${Q} + spread - 1e-9) AS hi,
    lo >= 1 AND hi <= n AND hi > lo AND hosts >= 2 AS estimable,
    v.s[k] AS x, countEqual(v.s, x) AS ties, indexOf(v.s, x) AS first,
    ifNull(nullIf(arrayMin(arrayFilter(d -> d > 0, arrayDifference(v.s))), 0), 1) AS resolution,
    if(ties <= 1, x, x + resolution * ((k - first + 0.5) / ties - 0.5)) AS q_value
  FROM (
    SELECT toString(trigger) AS trigger, driver, countIf(if(${HOLD}, ${MEASURED_WHEN.hold}, ${MEASURED_WHEN.revoke})) AS n_all
    FROM ${T.episodes} FINAL
    WHERE ${episodesWhere(s)}
    GROUP BY trigger, driver
  ) AS c
  LEFT JOIN (
    SELECT trigger, driver, arraySort(groupArrayIf(val, m)) AS s, uniqExactIf(hostname, m) AS hosts
    FROM (
      SELECT toString(trigger) AS trigger, driver, hostname, toFloat64(if(${HOLD}, hold_ns, revoke_ns)) AS val,
        if(${HOLD}, ${MEASURED_WHEN.hold}, ${MEASURED_WHEN.revoke}) AS m
      FROM ${T.episodes} FINAL
      WHERE ${episodesWhere(s)} AND ((${MEASURED_WHEN.revoke}) OR (${MEASURED_WHEN.hold}))
      ORDER BY cityHash64(episode_id) LIMIT ${COMPARE_MAX_SAMPLES} BY trigger, driver
    )
    GROUP BY trigger, driver
  ) AS v ON c.trigger = v.trigger AND c.driver = v.driver
  WHERE c.n_all > 0`;
}

/** Both sides per stratum, with compared strata weighted by the baseline's measured episodes. */
const strata = `SELECT if(a.trigger != '', a.trigger, b.trigger) AS trigger, if(a.trigger != '', a.driver, b.driver) AS driver,
    a.n_all AS baseline_measured, b.n_all AS candidate_measured, a.n AS baseline_values, b.n AS candidate_values,
    a.hosts AS baseline_hosts, b.hosts AS candidate_hosts, a.q_value AS baseline_q, b.q_value AS candidate_q,
    a.estimable AND b.estimable AS compared,
    if(compared, log(greatest(1, b.q_value)) - log(greatest(1, a.q_value)), NULL) AS log_ratio,
    if(compared, a.n_all, 0) / nullIf(sum(if(compared, a.n_all, 0)) OVER (), 0) AS weight,
    sum(a.n_all) OVER () AS baseline_measured_all
  FROM (${side('baseline')}) AS a
  FULL OUTER JOIN (${side('candidate')}) AS b ON a.trigger = b.trigger AND a.driver = b.driver`;

export const stratumLatency: PanelSpec = {
  type: 'table', title: 'Within strata: ${metric} p(${quantile}), baseline → candidate', w: 24, h: 10,
  description: 'What `revokescope compare` compares: per trigger × driver stratum the nearest-rank quantile of each kernel '
    + `(a uniform subsample of at most ${COMPARE_MAX_SAMPLES} episodes per stratum, ties spread over the clock resolution). `
    + 'ratio is empty where a kernel has too few values around the quantile or fewer than two hosts; weight is the stratum\'s share of '
    + 'the baseline among the compared strata. Intervals and p-values: revokescope compare, or a latency_regression alert rule.',
  queries: [{ format: 'table', columns: ['trigger', 'driver', 'ratio', 'weight'], sql: `SELECT trigger, driver, baseline_values, candidate_values,
  baseline_hosts, candidate_hosts, baseline_q / 1e6 AS baseline_ms, candidate_q / 1e6 AS candidate_ms,
  if(compared, greatest(1, candidate_q) / greatest(1, baseline_q), NULL) AS ratio, weight
FROM (${strata})
ORDER BY baseline_measured DESC, candidate_measured DESC, trigger, driver` }],
  overrides: [
    ...['baseline_ms', 'candidate_ms'].map((name) => ({ name, properties: { unit: 'ms', decimals: 3 } })),
    { name: 'ratio', properties: { decimals: 3, 'custom.cellOptions': { type: 'color-text' },
      thresholds: { mode: 'absolute', steps: [{ color: 'green', value: null }, { color: 'orange', value: 1.05 }, { color: 'red', value: 1.2 }] } } },
    { name: 'weight', properties: { unit: 'percentunit', decimals: 1 } },
  ],
  options: { showHeader: true, cellHeight: 'sm', footer: { show: false, reducer: ['sum'], countRows: false, fields: '' } },
};

export const overallLatency: PanelSpec = {
  type: 'stat', title: 'Overall ${metric} p(${quantile}) ratio, baseline mix', w: 8, h: 6,
  description: 'exp(Σ weight · ln(candidate ÷ baseline)) over the compared strata, weighted by the baseline\'s mix: a different workload '
    + 'mix alone leaves it at 1. coverage is the baseline\'s share in the compared strata. The same number as `revokescope compare`.',
  queries: [{ format: 'table', columns: ['ratio', 'strata', 'coverage'], sql: `SELECT exp(sumIf(weight * log_ratio, compared)) AS ratio,
  countIf(compared) AS strata, sumIf(baseline_measured, compared) / nullIf(any(baseline_measured_all), 0) AS coverage
FROM (${strata})` }],
  decimals: 3,
  overrides: [{ name: 'coverage', properties: { unit: 'percentunit', decimals: 1 } }, { name: 'strata', properties: { decimals: 0 } }],
  options: { reduceOptions: { calcs: ['lastNotNull'], fields: '/.*/', values: false }, colorMode: 'value', graphMode: 'none', textMode: 'value_and_name',
    justifyMode: 'auto', orientation: 'auto' },
};

/** Findings per side and stratum, attributed through their episode (as the store query of compare does). */
function findingCounts(s: Side): string {
  return `SELECT e.trigger AS trigger, e.driver AS driver, count() AS episodes, sum(f.n_certain) AS certain, sum(f.n_inconclusive) AS inconclusive
  FROM (
    SELECT episode_id, toString(trigger) AS trigger, driver FROM ${T.episodes} FINAL WHERE ${episodesWhere(s)}
  ) AS e
  LEFT JOIN (
    SELECT episode_id, countIf(NOT inconclusive) AS n_certain, countIf(inconclusive) AS n_inconclusive
    FROM ${T.findings} FINAL WHERE ${kernel(s)} AND $__timeFilter(time) GROUP BY episode_id
  ) AS f ON e.episode_id = f.episode_id
  GROUP BY trigger, driver`;
}

const rateStrata = `SELECT if(a.trigger != '', a.trigger, b.trigger) AS trigger, if(a.trigger != '', a.driver, b.driver) AS driver,
    a.episodes AS baseline_episodes, b.episodes AS candidate_episodes, a.certain AS baseline_certain, b.certain AS candidate_certain,
    a.inconclusive AS baseline_inconclusive, b.inconclusive AS candidate_inconclusive,
    a.episodes > 0 AND b.episodes > 0 AS common,
    if(common, a.episodes, 0) / nullIf(sum(if(common, a.episodes, 0)) OVER (), 0) AS weight
  FROM (${findingCounts('baseline')}) AS a
  FULL OUTER JOIN (${findingCounts('candidate')}) AS b ON a.trigger = b.trigger AND a.driver = b.driver`;

export const stratumRates: PanelSpec = {
  type: 'table', title: 'Within strata: findings per 1000 episodes', w: 24, h: 8,
  description: 'Certain and inconclusive findings per 1000 episodes of each stratum (findings counted through their episode). '
    + 'Exact intervals and tests: revokescope compare.',
  queries: [{ format: 'table', columns: ['trigger', 'driver'], sql: `SELECT trigger, driver, baseline_episodes, candidate_episodes,
  1000 * baseline_certain / nullIf(baseline_episodes, 0) AS baseline_certain_per_1k, 1000 * candidate_certain / nullIf(candidate_episodes, 0) AS candidate_certain_per_1k,
  1000 * baseline_inconclusive / nullIf(baseline_episodes, 0) AS baseline_inconclusive_per_1k,
  1000 * candidate_inconclusive / nullIf(candidate_episodes, 0) AS candidate_inconclusive_per_1k
FROM (${rateStrata})
ORDER BY baseline_episodes DESC, candidate_episodes DESC, trigger, driver` }],
  decimals: 3,
  options: { showHeader: true, cellHeight: 'sm', footer: { show: false, reducer: ['sum'], countRows: false, fields: '' } },
};

export const overallRates: PanelSpec = {
  type: 'stat', title: 'Findings per 1000 episodes, baseline mix', w: 16, h: 6,
  description: 'The baseline\'s rate over the strata both kernels ran, and the candidate\'s standardized to the baseline\'s mix of them '
    + '(Σ weight · rate): the same numbers as `revokescope compare`.',
  queries: [{ format: 'table', columns: ['baseline_certain_per_1k', 'candidate_certain_per_1k'], sql: `SELECT
  1000 * sumIf(weight * baseline_certain / baseline_episodes, common) AS baseline_certain_per_1k,
  1000 * sumIf(weight * candidate_certain / candidate_episodes, common) AS candidate_certain_per_1k,
  1000 * sumIf(weight * baseline_inconclusive / baseline_episodes, common) AS baseline_inconclusive_per_1k,
  1000 * sumIf(weight * candidate_inconclusive / candidate_episodes, common) AS candidate_inconclusive_per_1k
FROM (${rateStrata})` }],
  decimals: 3,
  options: { reduceOptions: { calcs: ['lastNotNull'], fields: '/.*/', values: false }, colorMode: 'value', graphMode: 'none', textMode: 'value_and_name',
    justifyMode: 'auto', orientation: 'auto' },
};
