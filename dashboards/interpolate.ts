// What grafana-clickhouse-datasource (4.x) does to a panel's rawSql before ClickHouse sees it, so tests can run
// the dashboards' SQL for real. Two stages, as in the plugin:
//  1. frontend, CHDatasource.applyTemplateVariables(): $__conditionalAll(phrase, $var) becomes 1=1 when the
//     variable is All (or empty), then Grafana's templateSrv.replace() substitutes variables, formatting
//     multi-value variables with the plugin's formatter ('a','b') unless the reference names a format
//     (${var:singlequote});
//  2. backend, macros.Interpolate(): $__ macros expand innermost first, outside string literals and comments;
//     unknown macros are left as they are (ClickHouse then rejects them).

export interface TimeRange {
  fromMs: number;
  toMs: number;
  /** The query interval Grafana computed for the panel (range / max data points, rounded). */
  intervalMs: number;
}

/** A variable's state: `all` when "All" is selected; `options` are what the variable query returned. */
export interface VariableValue {
  multi: boolean;
  all?: boolean;
  values: string[];
  options: string[];
}

export type Variables = Record<string, VariableValue>;

// ---------------------------------------------------------------- stage 1: frontend

/** Arguments of the call whose '(' is at `open`, split at top-level commas (CHDatasource.getMacroArgs). */
function macroArgs(sql: string, open: number): string[] {
  const args: string[] = [];
  let depth = 0;
  let last = open + 1;
  for (let i = open; i < sql.length; i++) {
    const c = sql[i];
    if (c === '(') depth++;
    else if (c === ')') depth--;
    if (c === ',' && depth === 1) { args.push(sql.slice(last, i)); last = i + 1; }
    if ((c === '(' || c === ')' || c === ',') && depth === 0) { args.push(sql.slice(last, i)); return args; }
  }
  return [];
}

/** CHDatasource.applyConditionalAll: last occurrence first; only the variable's current value matters. */
export function applyConditionalAll(sql: string, vars: Variables): string {
  const macro = '$__conditionalAll(';
  let at = sql.lastIndexOf(macro);
  while (at !== -1) {
    const params = macroArgs(sql, at + macro.length - 1);
    if (params.length !== 2) return sql;
    const ref = /(?<=\$\{)[\w\d]+(?=\})|(?<=\$)[\w\d]+/.exec(params[1]!.trim());
    let phrase = params[0]!;
    if (ref) {
      const v = vars[ref[0]];
      const current = v ? (v.all ? '$__all' : v.values.join(',')) : undefined;
      if (current === '' || current === '$__all') phrase = '1=1';
    }
    sql = sql.replace(`${macro}${params[0]},${params[1]})`, phrase);
    at = sql.lastIndexOf(macro);
  }
  return sql;
}

// Grafana's variable syntax: $name, [[name:format]], ${name.fieldPath:format}
const VARIABLE = /\$(\w+)|\[\[(\w+?)(?::(\w+))?\]\]|\$\{(\w+)(?:\.([^:^}]+))?(?::([^}]+))?\}/g;

function singleQuote(values: string[]): string {
  return values.map((v) => `'${v.replace(/'/g, "\\'")}'`).join(',');
}

/** templateSrv.replace(sql, scopedVars, pluginFormat): unknown names stay as written. */
export function replaceVariables(sql: string, vars: Variables, range: TimeRange): string {
  const builtins: Record<string, string> = {
    __interval: `${Math.round(range.intervalMs / 1000)}s`,
    __interval_ms: String(range.intervalMs),
    __from: String(range.fromMs),
    __to: String(range.toMs),
  };
  return sql.replace(VARIABLE, (match, n1?: string, n2?: string, f2?: string, n3?: string, _path?: string, f3?: string) => {
    const name = n1 ?? n2 ?? n3!;
    const format = f2 ?? f3;
    if (name in builtins && !(name in vars)) return builtins[name]!;
    const v = vars[name];
    if (!v) return match;
    // All without a custom all value: every option of the variable
    const values = v.all ? v.options : v.values;
    if (format === 'singlequote') return singleQuote(values);
    if (format === 'csv') return values.join(',');
    if (format === 'raw') return values.join(',');
    if (format !== undefined) throw new Error(`variable format '${format}' is not emulated`);
    // the plugin's formatter: arrays become 'a','b' (no escaping); a single value is inserted raw
    return v.multi || values.length > 1 ? `'${values.join("','")}'` : (values[0] ?? '');
  });
}

// ---------------------------------------------------------------- stage 2: backend macros

const pad = (n: number): string => String(n).padStart(2, '0');
const toDateTime = (ms: number): string => `toDateTime(${Math.floor(ms / 1000)})`;
const toDateTime64 = (ms: number): string => `fromUnixTimestamp64Milli(${Math.trunc(ms)})`;
const toDate = (ms: number): string => {
  const d = new Date(ms);
  return `toDate('${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}')`;
};

type Macro = (args: string[], r: TimeRange) => string;

function arity(name: string, n: number, f: Macro): Macro {
  return (args, r) => {
    if (args.length !== n) throw new Error(`$__${name} expected ${n} argument(s), received ${args.length}`);
    return f(args, r);
  };
}

const seconds = (r: TimeRange): number => Math.max(Math.floor(r.intervalMs / 1000), 1);

/** pkg/macros/macros.go ClickHouseMacros (the ones a ClickHouse query can use). */
export const MACROS: Record<string, Macro> = {
  fromTime: (_a, r) => toDateTime(r.fromMs),
  toTime: (_a, r) => toDateTime(r.toMs),
  fromTime_ms: (_a, r) => toDateTime64(r.fromMs),
  toTime_ms: (_a, r) => toDateTime64(r.toMs),
  timeFilter: arity('timeFilter', 1, ([c], r) => `${c} >= ${toDateTime(r.fromMs)} AND ${c} <= ${toDateTime(r.toMs)}`),
  timeFilter_ms: arity('timeFilter_ms', 1, ([c], r) => `${c} >= ${toDateTime64(r.fromMs)} AND ${c} <= ${toDateTime64(r.toMs)}`),
  timeFrom: arity('timeFrom', 1, ([c], r) => `${c} >= ${toDateTime(r.fromMs)}`),
  timeTo: arity('timeTo', 1, ([c], r) => `${c} <= ${toDateTime(r.toMs)}`),
  dateFilter: arity('dateFilter', 1, ([c], r) => `${c} >= ${toDate(r.fromMs)} AND ${c} <= ${toDate(r.toMs)}`),
  timeInterval: arity('timeInterval', 1, ([c], r) => `toStartOfInterval(toDateTime(${c}), INTERVAL ${seconds(r)} second)`),
  timeInterval_ms: arity('timeInterval_ms', 1, ([c], r) =>
    `toStartOfInterval(toDateTime64(${c}, 3), INTERVAL ${Math.max(Math.trunc(r.intervalMs), 1)} millisecond)`),
  interval_s: (_a, r) => String(seconds(r)),
};
MACROS.dateTimeFilter = arity('dateTimeFilter', 2, ([d, t], r) =>
  `(${d} >= ${toDate(r.fromMs)} AND ${d} <= ${toDate(r.toMs)}) AND (${t} >= ${toDateTime(r.fromMs)} AND ${t} <= ${toDateTime(r.toMs)})`);
MACROS.dt = MACROS.dateTimeFilter;

/** End of a quoted region or comment starting at i, or -1 when none starts there (ClickHouse lexing:
 * '...' and `...` with backslash escapes and doubled quotes, "..." identifiers, -- and block comments). */
function skipLiteral(sql: string, i: number): number {
  const c = sql[i];
  if (c === "'" || c === '`' || c === '"') {
    for (let j = i + 1; j < sql.length; j++) {
      if (sql[j] === '\\') { j++; continue; }
      if (sql[j] === c) {
        if (sql[j + 1] === c) { j++; continue; }
        return j + 1;
      }
    }
    return sql.length;
  }
  if (c === '-' && sql[i + 1] === '-') { const e = sql.indexOf('\n', i); return e === -1 ? sql.length : e; }
  if (c === '/' && sql[i + 1] === '*') { const e = sql.indexOf('*/', i + 2); return e === -1 ? sql.length : e + 2; }
  return -1;
}

/** Expands $__ macros like macros.Interpolate; arguments are expanded first, then trimmed. */
export function expandMacros(sql: string, r: TimeRange): string {
  let out = '';
  let i = 0;
  while (i < sql.length) {
    const end = skipLiteral(sql, i);
    if (end !== -1) { out += sql.slice(i, end); i = end; continue; }
    const m = /^\$__(\w+)/.exec(sql.slice(i, i + 64));
    if (!m) { out += sql[i]; i++; continue; }
    const name = m[1]!;
    const macro: Macro | undefined = Object.hasOwn(MACROS, name) ? MACROS[name] : undefined;
    let next = i + m[0].length;
    let args: string[] = [];
    if (sql[next] === '(') {
      // balanced parentheses, literals skipped
      let depth = 0;
      let j = next;
      for (; j < sql.length; j++) {
        const e = skipLiteral(sql, j);
        if (e !== -1) { j = e - 1; continue; }
        if (sql[j] === '(') depth++;
        else if (sql[j] === ')' && --depth === 0) break;
      }
      if (depth !== 0) throw new Error(`unbalanced parentheses after $__${name}`);
      const inner = sql.slice(next + 1, j);
      if (macro) {
        args = splitArgs(expandMacros(inner, r)).map((a) => a.trim());
        next = j + 1;
      }
    }
    if (!macro) { out += m[0]; i += m[0].length; continue; }
    out += macro(args, r);
    i = next;
  }
  return out;
}

function splitArgs(s: string): string[] {
  if (s.trim() === '') return [];
  const parts: string[] = [];
  let depth = 0;
  let last = 0;
  for (let i = 0; i < s.length; i++) {
    const e = skipLiteral(s, i);
    if (e !== -1) { i = e - 1; continue; }
    if (s[i] === '(') depth++;
    else if (s[i] === ')') depth--;
    else if (s[i] === ',' && depth === 0) { parts.push(s.slice(last, i)); last = i + 1; }
  }
  parts.push(s.slice(last));
  return parts;
}

/** The SQL ClickHouse receives for a panel query. */
export function interpolate(rawSql: string, vars: Variables, range: TimeRange): string {
  const frontend = replaceVariables(applyConditionalAll(rawSql, vars), vars, range);
  return expandMacros(frontend, range);
}
