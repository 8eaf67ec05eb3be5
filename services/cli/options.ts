// The options table: every setting of every command — its flag, its environment variable, its default, its parser and
// its help — declared once, in groups that commands compose (options/*.ts). Nothing below services/cli/ reads the
// environment: commands resolve their settings here and hand plain values down. A bad value is a usage error (exit 2)
// that names the flag or the variable it came from. One integer parser and one duration parser for every command:
// a bare number in a duration is seconds, everywhere.
import { parseArgs } from 'node:util';

/** A problem with the command line or the environment: the command prints it and exits 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** Parses one value; `name` is where it came from (--flag or VARIABLE), for the error. */
export type Parser<T> = (text: string, name: string) => T;

export interface Option<T = unknown> {
  /** Long flag without the dashes; omit for a setting that only comes from the environment. */
  flag?: string;
  short?: string;
  env?: string;
  /** A switch (present = true); no value, no parser. */
  boolean?: boolean;
  parse?: Parser<T>;
  default?: T;
  /** Shown for the value in the help, e.g. DIR. */
  arg?: string;
  help: string;
}

export type OptionTable = Record<string, Option>;

type ValueOf<O> = O extends { boolean: true } ? boolean
  : O extends { default: infer D } ? D | (O extends Option<infer T> ? T : never)
  : O extends Option<infer T> ? T | undefined : never;

export type Values<T extends OptionTable> = { [K in keyof T]: ValueOf<T[K]> };

// ---------------------------------------------------------------- parsers

/** A decimal integer in [min, max] (no sign unless min < 0, no exponent, no hex, no blanks). */
export function integer(min: number, max: number = Number.MAX_SAFE_INTEGER): Parser<number> {
  return (text, name) => {
    const t = text.trim();
    if (!/^-?[0-9]+$/.test(t) || t !== text || (t.startsWith('-') && min >= 0)) throw new UsageError(`${name} must be an integer ${min}..${max}, got '${text}'`);
    const n = Number(t);
    if (!Number.isSafeInteger(n) || n < min || n > max) throw new UsageError(`${name} must be an integer ${min}..${max}, got '${text}'`);
    return n;
  };
}

const UNIT_NS: Record<string, number> = { ns: 1, us: 1e3, 'µs': 1e3, 'μs': 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9, d: 86_400e9 };
const DURATION = /^(\d+(?:\.\d+)?)(ns|us|µs|μs|ms|s|m|h|d)?$/;

/** A duration in whole nanoseconds: 2s, 50ms, 500us, 1000ns, 1.5s, 2m, 1h, 1d, or a bare number of seconds. */
export function duration(o: { min?: number; max?: number } = {}): Parser<number> {
  const min = o.min ?? 0, max = o.max ?? 365 * 86_400e9;
  return (text, name) => {
    const m = DURATION.exec(text);
    const ns = m ? Math.round(Number(m[1]) * UNIT_NS[m[2] ?? 's']!) : NaN;
    if (!Number.isSafeInteger(ns) || ns < min || ns > max) {
      throw new UsageError(`${name} must be a duration ${show(min)}..${show(max)} (e.g. 2s, 50ms, 500us, 2m; a bare number is seconds), got '${text}'`);
    }
    return ns;
  };
}

function show(ns: number): string {
  for (const [u, f] of [['d', 86_400e9], ['h', 3600e9], ['m', 60e9], ['s', 1e9], ['ms', 1e6], ['us', 1e3]] as const) {
    if (ns >= f && ns % f === 0) return `${ns / f}${u}`;
  }
  return `${ns}ns`;
}

/** Any non-empty text (an empty value is a mistake, not a default). */
export const text: Parser<string> = (t, name) => {
  if (t === '') throw new UsageError(`${name} is empty`);
  return t;
};

/** One of the given words. */
export function oneOf<W extends string>(...words: W[]): Parser<W> {
  return (t, name) => {
    if (!(words as string[]).includes(t)) throw new UsageError(`${name} must be ${words.join(', ')}, got '${t}'`);
    return t as W;
  };
}

/** A ClickHouse identifier (database, cluster): letters, digits and _. */
export const identifier: Parser<string> = (t, name) => {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(t)) throw new UsageError(`${name} must be a plain identifier (letters, digits, _), got '${t}'`);
  return t;
};

/** An http(s) URL. */
export const url: Parser<string> = (t, name) => {
  let u: URL;
  try { u = new URL(t); } catch { throw new UsageError(`${name} must be an http(s) URL, got '${t}'`); }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new UsageError(`${name} must be an http(s) URL, got '${t}'`);
  return t;
};

/** Comma-separated items, each parsed by `item` (blank items dropped; none at all is an error). */
export function list<T>(item: Parser<T>): Parser<T[]> {
  return (t, name) => {
    const items = t.split(',').map((s) => s.trim()).filter(Boolean);
    if (items.length === 0) throw new UsageError(`${name} is empty`);
    return items.map((s) => item(s, name));
  };
}

// ---------------------------------------------------------------- parsing a command line

export interface Parsed<T extends OptionTable> {
  values: Values<T>;
  positionals: string[];
  /** --help was given: print helpText and exit 0. */
  help: boolean;
  /** Where each value came from (--flag, VARIABLE, or 'default'), for messages. */
  from: Partial<Record<keyof T, string>>;
}

/** Flags first, then the environment, then the default. Unknown flags and bad values throw UsageError. */
export function parseCommand<T extends OptionTable>(argv: string[], table: T, env: NodeJS.ProcessEnv,
  o: { positionals?: boolean } = {}): Parsed<T> {
  const flags: Record<string, { type: 'string' | 'boolean'; short?: string }> = { help: { type: 'boolean', short: 'h' } };
  for (const opt of Object.values(table)) {
    if (opt.flag) flags[opt.flag] = { type: opt.boolean ? 'boolean' : 'string', ...(opt.short ? { short: opt.short } : {}) };
  }
  // `--hosts -5`: a value that starts with a dash is still the flag's value (node's parser calls it ambiguous)
  const args: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!, next = argv[i + 1];
    const name = a.startsWith('--') && !a.includes('=') ? a.slice(2) : undefined;
    if (name && flags[name]?.type === 'string' && next !== undefined && next.startsWith('-') && !(next.slice(2) in flags && next.startsWith('--'))) {
      args.push(`${a}=${next}`);
      i++;
    } else args.push(a);
  }
  let parsed: { values: Record<string, string | boolean | undefined>; positionals: string[] };
  try {
    parsed = parseArgs({ args, options: flags, strict: true, allowPositionals: o.positionals ?? false }) as typeof parsed;
  } catch (err) {
    throw new UsageError((err as Error).message.replace(/^Unknown option/, 'unknown option'));
  }
  const values: Record<string, unknown> = {};
  const from: Record<string, string> = {};
  // --help prints the help whatever else the command line and the environment hold
  if (parsed.values.help === true) return { values: values as Values<T>, positionals: parsed.positionals, help: true, from: from as Parsed<T>['from'] };
  for (const [key, opt] of Object.entries(table)) {
    const flagValue = opt.flag ? parsed.values[opt.flag] : undefined;
    if (flagValue !== undefined) {
      values[key] = opt.boolean ? flagValue === true : opt.parse ? opt.parse(String(flagValue), `--${opt.flag}`) : String(flagValue);
      from[key] = `--${opt.flag}`;
    } else if (opt.env !== undefined && env[opt.env] !== undefined) {
      const raw = env[opt.env]!;
      values[key] = opt.boolean ? booleanEnv(raw, opt.env) : opt.parse ? opt.parse(raw, opt.env) : raw;
      from[key] = opt.env;
    } else {
      values[key] = opt.default;
      from[key] = 'default';
    }
  }
  return { values: values as Values<T>, positionals: parsed.positionals, help: false, from: from as Parsed<T>['from'] };
}

function booleanEnv(raw: string, name: string): boolean {
  if (/^(1|true|yes|on)$/i.test(raw)) return true;
  if (/^(0|false|no|off|)$/i.test(raw)) return false;
  throw new UsageError(`${name} must be true or false, got '${raw}'`);
}

/** The help text of a command: its usage line, what it does, and its options by section, from the tables. */
export function helpText(usage: string, about: string, sections: [string, OptionTable][], footer = ''): string {
  const rows: [string, string][] = [];
  const out = [`usage: ${usage}`, '', about.trim(), ''];
  for (const [title, table] of sections) {
    const entries = Object.values(table).filter((opt) => opt.flag || opt.env);
    if (entries.length === 0) continue;
    rows.length = 0;
    for (const opt of entries) {
      const left = opt.flag ? `--${opt.flag}${opt.boolean ? '' : ` ${opt.arg ?? 'VALUE'}`}` : opt.env!;
      const notes: string[] = [];
      if (opt.flag && opt.env) notes.push(`env ${opt.env}`);
      if (opt.default !== undefined && opt.default !== false) notes.push(`default ${describeDefault(opt)}`);
      rows.push([left, `${opt.help}${notes.length ? ` (${notes.join('; ')})` : ''}`]);
    }
    const width = Math.min(28, Math.max(...rows.map(([l]) => l.length)));
    out.push(`${title}:`);
    for (const [l, r] of rows) out.push(l.length > width ? `  ${l}\n  ${' '.repeat(width)}  ${r}` : `  ${l.padEnd(width)}  ${r}`);
    out.push('');
  }
  out.push('  -h, --help', '');
  if (footer) out.push(footer.trim(), '');
  return out.join('\n');
}

function describeDefault(opt: Option): string {
  const d = opt.default;
  if (opt.parse && typeof d === 'number' && opt.arg === 'DURATION') return show(d);
  return Array.isArray(d) ? d.join(',') : String(d);
}
