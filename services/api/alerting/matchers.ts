// Alertmanager label matchers: `name="value"`, `name!="v"`, `name=~"re"`, `name!~"re"`, optionally wrapped in
// `{...}` and comma separated (what amtool sends in `filter=`), plus the JSON form {name, value, isRegex, isEqual}
// of silences. Regexes are Alertmanager's: RE2 syntax, anchored (labels.NewMatcher compiles `^(?:re)$`), `.`
// not matching a newline. They run on re2js, a linear-time RE2 engine (no backtracking, so `(.|.|.)*x` costs
// as much as `.*x`); the cost of one match is bounded by the program's size times the value's length, the
// program size is capped, each compiled regex remembers its answers per value, and every evaluation that runs
// regexes for a request carries a time budget (MatchBudget).
import { RE2JS, RE2JSException } from 're2js';
import { BadParameter } from '../errors.js';

export interface Matcher {
  name: string;
  value: string;
  isRegex: boolean;
  isEqual: boolean;
}

/** A matcher a client wrote that does not parse, compile or run within its budget (a 400: BadParameter). */
export class MatcherError extends BadParameter {
  override name = 'MatcherError';
}

/** The regex work of one evaluation ran past its time budget. */
export class MatchBudgetError extends MatcherError {
  override name = 'MatchBudgetError';
}

const LABEL_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const MAX_REGEX = 512;
/** RE2 program size (about one instruction per character or repetition step) a matcher may compile to: a
 * match costs at most this × the value's length steps. 1000 takes any list of alternatives that fits in
 * MAX_REGEX characters; `(.?){999}` (4001) and `(.{0,30}){0,30}` (1895) are refused. */
export const MAX_PROGRAM_SIZE = 1000;
/** Default time budget of one evaluation (one request's matching, or checking a new silence). */
export const DEFAULT_MATCH_BUDGET_MS = 250;
const MEMO_ENTRIES = 4096;

/** The time one evaluation may spend running regexes (answers remembered from earlier evaluations are free).
 * Checked before each regex run: the overrun is at most one match, itself bounded (see MAX_PROGRAM_SIZE). */
export class MatchBudget {
  private readonly deadline: number;
  constructor(readonly ms: number = DEFAULT_MATCH_BUDGET_MS, private readonly clock: () => number = () => performance.now()) {
    this.deadline = clock() + ms;
  }

  spend(what: string): void {
    if (this.clock() >= this.deadline) {
      throw new MatchBudgetError(`matching took longer than its budget of ${this.ms} ms (at ${what}); use a simpler or narrower regex`);
    }
  }
}

/** A compiled label regex (full match, Alertmanager semantics) that remembers its answer per value. */
export class LabelRegex {
  private readonly memo = new Map<string, boolean>();
  constructor(readonly source: string, private readonly re: RE2JS) {}

  get programSize(): number { return this.re.programSize(); }

  test(value: string, budget?: MatchBudget): boolean {
    const known = this.memo.get(value);
    if (known !== undefined) return known;
    budget?.spend(`regex ${JSON.stringify(this.source.length > 60 ? `${this.source.slice(0, 60)}…` : this.source)}`);
    const hit = this.re.testExact(value);
    if (this.memo.size >= MEMO_ENTRIES) this.memo.clear();
    this.memo.set(value, hit);
    return hit;
  }
}

const regexCache = new Map<string, LabelRegex>();

/** Compile (or find compiled) a matcher regex. Compiling is regex work too (up to a few hundred ms for a
 * large repetition), so it spends from the budget. */
export function compileMatcherRegex(value: string, budget?: MatchBudget): LabelRegex {
  const hit = regexCache.get(value);
  if (hit) return hit;
  if (value.length > MAX_REGEX) throw new MatcherError(`regex longer than ${MAX_REGEX} characters`);
  budget?.spend('compiling a regex');
  let re: RE2JS;
  try {
    re = RE2JS.compile(`^(?:${value})$`);
  } catch (e) {
    if (!(e instanceof RE2JSException)) throw e;
    throw new MatcherError(`bad regex ${JSON.stringify(value)} (RE2 syntax): ${e.message}`);
  }
  if (re.programSize() > MAX_PROGRAM_SIZE) {
    throw new MatcherError(`regex ${JSON.stringify(value)} is too complex: it compiles to ${re.programSize()} RE2 instructions, at most ${MAX_PROGRAM_SIZE} allowed`);
  }
  const compiled = new LabelRegex(value, re);
  if (regexCache.size >= 1000) regexCache.clear();
  regexCache.set(value, compiled);
  return compiled;
}

export function validateMatcher(m: Matcher, budget?: MatchBudget): Matcher {
  if (!LABEL_NAME.test(m.name)) throw new MatcherError(`invalid label name ${JSON.stringify(m.name)}`);
  if (m.isRegex) compileMatcherRegex(m.value, budget);
  return m;
}

export function matches(m: Matcher, labels: Record<string, string>, budget?: MatchBudget): boolean {
  const v = labels[m.name] ?? '';
  const hit = m.isRegex ? compileMatcherRegex(m.value, budget).test(v, budget) : v === m.value;
  return m.isEqual ? hit : !hit;
}

export function matchesAll(ms: readonly Matcher[], labels: Record<string, string>, budget?: MatchBudget): boolean {
  for (const m of ms) if (!matches(m, labels, budget)) return false;
  return true;
}

/** Parse one filter string: a single matcher or a `{a="b", c=~"d"}` list. */
export function parseMatchers(text: string, budget?: MatchBudget): Matcher[] {
  let s = text.trim();
  if (s.startsWith('{')) {
    if (!s.endsWith('}')) throw new MatcherError(`unbalanced braces in ${JSON.stringify(text)}`);
    s = s.slice(1, -1);
  }
  const out: Matcher[] = [];
  let i = 0;
  const skipWs = (): void => { while (i < s.length && /\s/.test(s[i]!)) i++; };
  skipWs();
  while (i < s.length) {
    const nameStart = i;
    let name: string;
    if (s[i] === '"') {
      const [v, next] = quoted(s, i, text);
      name = v;
      i = next;
    } else {
      while (i < s.length && /[A-Za-z0-9_]/.test(s[i]!)) i++;
      name = s.slice(nameStart, i);
    }
    skipWs();
    const op = /^(=~|!~|!=|=)/.exec(s.slice(i))?.[1];
    if (!op) throw new MatcherError(`expected an operator (=, !=, =~, !~) after ${JSON.stringify(name)} in ${JSON.stringify(text)}`);
    i += op.length;
    skipWs();
    let value: string;
    if (s[i] === '"') {
      const [v, next] = quoted(s, i, text);
      value = v;
      i = next;
    } else {
      const start = i;
      while (i < s.length && s[i] !== ',') i++;
      value = s.slice(start, i).trim();
    }
    out.push(validateMatcher({ name, value, isRegex: op === '=~' || op === '!~', isEqual: op === '=' || op === '=~' }, budget));
    skipWs();
    if (i < s.length) {
      if (s[i] !== ',') throw new MatcherError(`expected ',' at position ${i} in ${JSON.stringify(text)}`);
      i++;
      skipWs();
    }
  }
  if (out.length === 0) throw new MatcherError(`no matcher in ${JSON.stringify(text)}`);
  return out;
}

function quoted(s: string, start: number, text: string): [string, number] {
  let i = start + 1;
  let v = '';
  while (i < s.length && s[i] !== '"') {
    if (s[i] === '\\' && i + 1 < s.length) {
      const c = s[i + 1]!;
      v += c === 'n' ? '\n' : c === 't' ? '\t' : c;
      i += 2;
    } else {
      v += s[i]!;
      i++;
    }
  }
  if (i >= s.length) throw new MatcherError(`unterminated quote in ${JSON.stringify(text)}`);
  return [v, i + 1];
}

export function formatMatcher(m: Matcher): string {
  const op = m.isRegex ? (m.isEqual ? '=~' : '!~') : (m.isEqual ? '=' : '!=');
  return `${m.name}${op}${JSON.stringify(m.value)}`;
}
