// Runs every panel query of the dashboards against a ClickHouse holding revokescope data, expanded as the
// grafana-clickhouse-datasource plugin would expand it, and reports what a panel could not show: SQL errors,
// empty results, and results whose shape does not fit the panel's format (sqlds: time series = one time
// column + numeric values, string columns as labels, ascending time; table = columns).
import type { DashboardSpec, PanelSpec, Query } from './builder.js';
import { interpolate, type TimeRange, type Variables } from './interpolate.js';

export interface QueryResult { names: string[]; types: string[]; rows: unknown[][] }
export type RunSql = (sql: string) => Promise<QueryResult>;

/** How multi-value variables are set: All, every option listed explicitly, or only the first option. */
export type Selection = 'all' | 'list' | 'first';

const base = (t: string): string => t.replace(/^(Nullable|LowCardinality)\((.*)\)$/, '$2').replace(/^(Nullable|LowCardinality)\((.*)\)$/, '$2');
export const isTime = (t: string): boolean => /^DateTime(64)?(\(|$)/.test(base(t));
export const isNumeric = (t: string): boolean => /^(U?Int\d+|Float\d+|Decimal)/.test(base(t));
export const isBool = (t: string): boolean => base(t) === 'Bool';
export const isStringy = (t: string): boolean => /^(String|FixedString|Enum)/.test(base(t));

/** Resolves the variables in order as Grafana does: each query variable runs with the ones before it (the
 * plugin's metricFindQuery takes the first column as value); single-value variables default to the first
 * option, multi-value ones follow `selection`. */
export async function resolveVariables(spec: DashboardSpec, run: RunSql, range: TimeRange, selection: Selection): Promise<Variables> {
  const out: Variables = {};
  for (const v of spec.variables) {
    if (v.type === 'datasource') continue;
    if (v.type === 'custom') { out[v.name] = { multi: false, values: [v.current], options: v.values }; continue; }
    if (v.type === 'textbox') { out[v.name] = { multi: false, values: [v.current], options: [v.current] }; continue; }
    const res = await run(interpolate(v.sql, out, range));
    const options = res.rows.map((r) => String(r[0]));
    if (options.length === 0 && v.optional && v.multi && v.includeAll) { out[v.name] = { multi: true, all: true, values: ['$__all'], options }; continue; }
    if (options.length === 0) throw new Error(`${spec.uid}: variable ${v.name} has no options`);
    if (v.multi && v.includeAll && selection === 'all') out[v.name] = { multi: true, all: true, values: ['$__all'], options };
    else if (v.multi && selection === 'list') out[v.name] = { multi: true, values: options, options };
    else out[v.name] = { multi: v.multi, values: [options[0]!], options };
  }
  return out;
}

/** Shape problems of one result for a panel type and query format (empty when it fits). */
export function shapeProblems(panel: PanelSpec, q: Query, res: QueryResult): string[] {
  const problems: string[] = [];
  const timeCols = res.types.filter(isTime).length;
  const numeric = res.types.filter(isNumeric).length;
  if (q.format === 'time_series') {
    if (timeCols !== 1) problems.push(`time series needs exactly one time column, got ${res.types.join(', ')}`);
    if (numeric === 0) problems.push(`time series needs a numeric value column, got ${res.types.join(', ')}`);
    res.types.forEach((t, i) => {
      if (!isTime(t) && !isNumeric(t) && !isStringy(t)) problems.push(`column ${res.names[i]} of type ${t} is neither time, value nor label`);
    });
    const ti = res.types.findIndex(isTime);
    if (ti >= 0) {
      const times = res.rows.map((r) => String(r[ti]));
      if (times.some((t, i) => i > 0 && t < times[i - 1]!)) problems.push('rows are not in ascending time order (long → wide conversion fails)');
    }
    if (res.types.some(isStringy)) {
      const keys = res.rows.map((r) => res.types.map((t, i) => (isTime(t) || isStringy(t) ? String(r[i]) : '')).join('\u0000'));
      if (new Set(keys).size !== keys.length) problems.push('the same time and labels appear twice');
    }
  } else if (res.names.length === 0) {
    problems.push('a table without columns');
  }
  const names = new Set(res.names);
  for (const c of q.columns ?? []) if (!names.has(c)) problems.push(`column ${c} (used by the panel) is missing`);
  for (const o of panel.overrides ?? []) if (!names.has(o.name)) problems.push(`override for missing column ${o.name}`);
  for (const l of panel.links ?? []) {
    for (const m of l.url.matchAll(/\$\{__data\.fields\.(\w+)\}/g)) if (!names.has(m[1]!)) problems.push(`link uses missing column ${m[1]}`);
  }
  switch (panel.type) {
    case 'heatmap':
      if (!res.types.every((t) => isTime(t) || isNumeric(t))) problems.push('heatmap buckets must be numeric');
      for (const n of res.names.filter((_, i) => isNumeric(res.types[i]!))) {
        if (n !== '+Inf' && !Number.isFinite(Number(n))) problems.push(`heatmap bucket ${n} is not a number`);
      }
      break;
    case 'stat': case 'bargauge':
      if (numeric === 0) problems.push(`${panel.type} needs a numeric column`);
      break;
    case 'state-timeline':
      if (timeCols !== 1) problems.push('state timeline needs a time column');
      break;
    case 'timeseries':
      if (q.format !== 'time_series') problems.push('timeseries panel with table format');
      break;
    default:
  }
  return problems;
}

export interface PanelRun { panel: PanelSpec; query: Query; sql: string; result?: QueryResult; problems: string[] }

/** Every query of every panel of a dashboard; `requireRows` makes an empty result a problem. */
export async function checkDashboard(spec: DashboardSpec, run: RunSql, range: TimeRange, selection: Selection,
  requireRows: boolean): Promise<PanelRun[]> {
  const vars = await resolveVariables(spec, run, range, selection);
  const out: PanelRun[] = [];
  for (const panel of spec.rows.flatMap((r) => r.panels)) {
    for (const query of panel.queries) {
      const sql = interpolate(query.sql, vars, range);
      const problems: string[] = [];
      if (/\$__\w|\$\{|\$[a-z]/.test(sql)) problems.push('a macro or variable was left unexpanded');
      let result: QueryResult | undefined;
      try {
        result = await run(sql);
      } catch (err) {
        problems.push(`ClickHouse: ${(err as Error).message.split('\n')[0]}`);
      }
      if (result) {
        if (requireRows && result.rows.length === 0) problems.push('no rows');
        else if (result.rows.length > 0) problems.push(...shapeProblems(panel, query, result));
      }
      out.push({ panel, query, sql, result, problems });
    }
  }
  return out;
}
