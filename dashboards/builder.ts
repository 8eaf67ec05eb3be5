// A small typed builder for Grafana dashboard JSON with grafana-clickhouse-datasource queries (dashboards as
// code). The foundation SDK has no ClickHouse query type; this covers what revokescope's dashboards use and
// nothing more. Output is plain JSON with a fixed key order, so regenerating gives the same bytes.

/** Dashboard schema version of current Grafana (12.2+, 13.x: migration 42 is the latest). */
export const SCHEMA_VERSION = 42;
/** The plugin version the queries are written for (targets carry it; without one the plugin treats a query
 * as a v3 query and migrates it). */
export const PLUGIN_VERSION = '4.20.0';
export const DATASOURCE_TYPE = 'grafana-clickhouse-datasource';
/** Panels and variables reference the data source through this dashboard variable. */
export const DATASOURCE_VAR = 'datasource';
/** The uid of the provisioned data source (dashboards/provisioning/datasources). */
export const DATASOURCE_UID = 'revokescope-clickhouse';
export const DATABASE = 'revokescope';

const datasourceRef = { type: DATASOURCE_TYPE, uid: `\${${DATASOURCE_VAR}}` };

/** How the plugin shapes a result: sqlds format 0 (time series: long frames become wide) or 1 (table). */
export type QueryFormat = 'time_series' | 'table';

export interface Query {
  sql: string;
  format: QueryFormat;
  /** Columns the panel refers to by name (links, overrides): the query test checks they come back. */
  columns?: string[];
}

export type PanelType = 'timeseries' | 'table' | 'heatmap' | 'stat' | 'state-timeline' | 'barchart' | 'bargauge' | 'text';

export interface Override { name: string; properties: Record<string, unknown> }

export interface PanelSpec {
  type: PanelType;
  title: string;
  description?: string;
  /** Grid width (24 = full row) and height. */
  w: number;
  h: number;
  queries: Query[];
  unit?: string;
  decimals?: number;
  min?: number;
  max?: number;
  /** Merged into fieldConfig.defaults.custom. */
  custom?: Record<string, unknown>;
  /** Merged into fieldConfig.defaults. */
  defaults?: Record<string, unknown>;
  overrides?: Override[];
  options?: Record<string, unknown>;
  /** Data links on every field (table cells, graph points). */
  links?: { title: string; url: string }[];
  transformations?: { id: string; options: Record<string, unknown> }[];
  /** text panels only */
  content?: string;
}

export interface Row { title: string; panels: PanelSpec[] }

export type Variable =
  | { type: 'datasource'; name: string; label: string }
  | {
      type: 'query'; name: string; label: string; sql: string; multi: boolean; includeAll: boolean;
      /** 1 = on dashboard load, 2 = on time range change. */
      refresh?: 1 | 2;
      /** 0 = keep the query's order (the first option is the default), 1 = alphabetical. */
      sort?: 0 | 1;
      /** May have no options (e.g. VM names on a fleet without VMs): then it stands for All (multi, includeAll only). */
      optional?: boolean;
    }
  | { type: 'custom'; name: string; label: string; values: string[]; current: string }
  /** Free text with a default (e.g. the API's base URL that data links open). */
  | { type: 'textbox'; name: string; label: string; current: string; description?: string };

export interface DashboardSpec {
  uid: string;
  title: string;
  description: string;
  tags: string[];
  /** Default time range. */
  from?: string;
  refresh?: string;
  variables: Variable[];
  rows: Row[];
  /** Dashboard links (top bar). */
  links?: { title: string; url: string; tooltip?: string; includeVars?: boolean }[];
}

/** Fixed-order thresholds used for "any is bad" columns. */
export const redIfPositive = {
  mode: 'absolute',
  steps: [{ color: 'green', value: null }, { color: 'red', value: 1 }],
};

function target(q: Query, i: number): Record<string, unknown> {
  return {
    datasource: datasourceRef,
    editorType: 'sql',
    format: q.format === 'time_series' ? 0 : 1,
    pluginVersion: PLUGIN_VERSION,
    queryType: q.format === 'time_series' ? 'timeseries' : 'table',
    rawSql: q.sql,
    refId: String.fromCharCode(65 + i),
  };
}

function panelJson(p: PanelSpec, id: number, x: number, y: number): Record<string, unknown> {
  const defaults: Record<string, unknown> = {};
  if (p.type !== 'text') {
    defaults.custom = { ...(p.custom ?? {}) };
    if (p.unit) defaults.unit = p.unit;
    if (p.decimals !== undefined) defaults.decimals = p.decimals;
    if (p.min !== undefined) defaults.min = p.min;
    if (p.max !== undefined) defaults.max = p.max;
    if (p.links) defaults.links = p.links.map((l) => ({ targetBlank: false, title: l.title, url: l.url }));
    Object.assign(defaults, p.defaults ?? {});
  }
  const out: Record<string, unknown> = {
    id,
    type: p.type,
    title: p.title,
  };
  if (p.description) out.description = p.description;
  out.gridPos = { h: p.h, w: p.w, x, y };
  if (p.type === 'text') {
    out.options = { content: p.content ?? '', mode: 'markdown' };
    return out;
  }
  out.datasource = datasourceRef;
  out.fieldConfig = {
    defaults,
    overrides: (p.overrides ?? []).map((o) => ({ matcher: { id: 'byName', options: o.name },
      properties: Object.entries(o.properties).map(([k, v]) => ({ id: k, value: v })) })),
  };
  out.options = p.options ?? {};
  out.targets = p.queries.map(target);
  if (p.transformations) out.transformations = p.transformations;
  return out;
}

function variableJson(v: Variable): Record<string, unknown> {
  switch (v.type) {
    case 'datasource':
      return {
        current: { text: 'revokescope ClickHouse', value: DATASOURCE_UID },
        hide: 0, includeAll: false, label: v.label, multi: false, name: v.name, options: [],
        query: DATASOURCE_TYPE, refresh: 1, regex: '', skipUrlSync: false, type: 'datasource',
      };
    case 'query':
      return {
        current: v.includeAll ? { text: ['All'], value: ['$__all'] } : {},
        datasource: datasourceRef,
        definition: v.sql,
        hide: 0, includeAll: v.includeAll, label: v.label, multi: v.multi, name: v.name, options: [],
        query: v.sql,
        refresh: v.refresh ?? 2, regex: '', skipUrlSync: false, sort: v.sort ?? 1, type: 'query',
      };
    case 'custom':
      return {
        current: { text: v.current, value: v.current },
        hide: 0, includeAll: false, label: v.label, multi: false, name: v.name,
        options: v.values.map((x) => ({ selected: x === v.current, text: x, value: x })),
        query: v.values.join(','), skipUrlSync: false, type: 'custom',
      };
    case 'textbox':
      return {
        current: { text: v.current, value: v.current }, ...(v.description ? { description: v.description } : {}),
        hide: 0, label: v.label, name: v.name, options: [{ selected: true, text: v.current, value: v.current }],
        query: v.current, skipUrlSync: false, type: 'textbox',
      };
  }
}

/** Lays rows out top to bottom; panels of a row left to right, wrapping at 24 columns. */
export function dashboard(spec: DashboardSpec): Record<string, unknown> {
  const panels: Record<string, unknown>[] = [];
  let id = 1;
  let y = 0;
  for (const row of spec.rows) {
    panels.push({ collapsed: false, gridPos: { h: 1, w: 24, x: 0, y }, id: id++, panels: [], title: row.title, type: 'row' });
    y += 1;
    let x = 0;
    let rowHeight = 0;
    for (const p of row.panels) {
      if (x + p.w > 24) { y += rowHeight; x = 0; rowHeight = 0; }
      panels.push(panelJson(p, id++, x, y));
      x += p.w;
      rowHeight = Math.max(rowHeight, p.h);
    }
    y += rowHeight;
  }
  return {
    annotations: { list: [{ builtIn: 1, datasource: { type: 'grafana', uid: '-- Grafana --' }, enable: true, hide: true,
      iconColor: 'rgba(0, 211, 255, 1)', name: 'Annotations & Alerts', type: 'dashboard' }] },
    description: spec.description,
    editable: true,
    fiscalYearStartMonth: 0,
    graphTooltip: 1,
    links: [
      { asDropdown: true, icon: 'external link', includeVars: false, keepTime: true, tags: ['revokescope'],
        targetBlank: false, title: 'revokescope', type: 'dashboards' },
      ...(spec.links ?? []).map((l) => ({ asDropdown: false, icon: 'dashboard', includeVars: l.includeVars ?? false,
        keepTime: true, tags: [], targetBlank: false, title: l.title, tooltip: l.tooltip ?? '', type: 'link', url: l.url })),
    ],
    panels,
    refresh: spec.refresh ?? '1m',
    schemaVersion: SCHEMA_VERSION,
    tags: spec.tags,
    templating: { list: spec.variables.map(variableJson) },
    time: { from: spec.from ?? 'now-6h', to: 'now' },
    timepicker: {},
    timezone: 'browser',
    title: spec.title,
    uid: spec.uid,
    version: 1,
  };
}

/** The JSON text committed under dashboards/json/. */
export function render(d: Record<string, unknown>): string {
  return `${JSON.stringify(d, null, 2)}\n`;
}

// ---- SQL helpers (text the plugin expands; see dashboards/interpolate.ts for how) ----

/** `col IN (values)` for a multi-value variable, or 1=1 when All is selected (the plugin's $__conditionalAll). */
export const inVar = (column: string, variable: string): string =>
  `$__conditionalAll(${column} IN (\${${variable}:singlequote}), $${variable})`;

/** A single-value variable as a string literal. */
export const eqVar = (column: string, variable: string): string => `${column} = \${${variable}:singlequote}`;

/** Path of another revokescope dashboard with `var-NAME=VALUE` pairs (dashboard links add the time range
 * themselves: keepTime). */
export function dashboardPath(uid: string, vars: Record<string, string> = {}): string {
  const q = Object.entries(vars).map(([k, v]) => `var-${k}=${v}`).join('&');
  return q ? `/d/${uid}?${q}` : `/d/${uid}`;
}

/** Data link to another revokescope dashboard keeping the panel's time range. */
export function dashboardUrl(uid: string, vars: Record<string, string> = {}): string {
  const q = Object.entries(vars).map(([k, v]) => `&var-${k}=${v}`).join('');
  return `/d/${uid}?\${__url_time_range}${q}`;
}

/** Table cell links use the row's fields: `${__data.fields.NAME}`. */
export const field = (name: string): string => `\${__data.fields.${name}}`;

/** The dashboard variable holding the revokescope API's base URL (a textbox: the URL the viewer's browser reaches). */
export const API_VAR = 'api';

export const apiVariable: Variable = {
  type: 'textbox', name: API_VAR, label: 'revokescope API', current: 'http://127.0.0.1:8080',
  description: 'Base URL of the revokescope API as your browser reaches it (revokescope serve / run --serve): finding links open its explanation',
};

/** Data link from a table row with a finding_id column to the finding's explanation (GET /api/v1/findings/{id}/explain). */
export const explainLink = { title: 'Explain this finding', url: `\${${API_VAR}}/api/v1/findings/${field('finding_id')}/explain` };
