// Alertmanager label matchers: `name="value"`, `name!="v"`, `name=~"re"`, `name!~"re"`, optionally wrapped in
// `{...}` and comma separated (what amtool sends in `filter=`), plus the JSON form {name, value, isRegex, isEqual}
// of silences. Regexes are anchored like Alertmanager's (^(?:re)$). Client regexes run in V8, so patterns that
// can backtrack catastrophically (a quantified group holding a quantifier) or use backreferences/lookaround
// (which RE2 rejects too) are refused up front: no filter can stall the server.

export interface Matcher {
  name: string;
  value: string;
  isRegex: boolean;
  isEqual: boolean;
}

export class MatcherError extends Error {
  override readonly name = 'MatcherError';
}

const LABEL_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const MAX_REGEX = 512;
const regexCache = new Map<string, RegExp>();

export function compileMatcherRegex(value: string): RegExp {
  const hit = regexCache.get(value);
  if (hit) return hit;
  if (value.length > MAX_REGEX) throw new MatcherError(`regex longer than ${MAX_REGEX} characters`);
  if (/\\[1-9]|\\k<|\(\?[=!<]/.test(value)) throw new MatcherError(`regex ${JSON.stringify(value)}: backreferences and lookaround are not supported (RE2 syntax)`);
  if (/\((?:[^()\\]|\\.)*[+*}](?:[^()\\]|\\.)*\)\s*[+*{]/.test(value)) {
    throw new MatcherError(`regex ${JSON.stringify(value)}: nested quantifiers are not allowed`);
  }
  let re: RegExp;
  try {
    re = new RegExp(`^(?:${value})$`, 's');
  } catch (e) {
    throw new MatcherError(`bad regex ${JSON.stringify(value)}: ${(e as Error).message}`);
  }
  if (regexCache.size > 1000) regexCache.clear();
  regexCache.set(value, re);
  return re;
}

export function validateMatcher(m: Matcher): Matcher {
  if (!LABEL_NAME.test(m.name)) throw new MatcherError(`invalid label name ${JSON.stringify(m.name)}`);
  if (m.isRegex) compileMatcherRegex(m.value);
  return m;
}

export function matches(m: Matcher, labels: Record<string, string>): boolean {
  const v = labels[m.name] ?? '';
  const hit = m.isRegex ? compileMatcherRegex(m.value).test(v) : v === m.value;
  return m.isEqual ? hit : !hit;
}

export function matchesAll(ms: readonly Matcher[], labels: Record<string, string>): boolean {
  for (const m of ms) if (!matches(m, labels)) return false;
  return true;
}

/** Parse one filter string: a single matcher or a `{a="b", c=~"d"}` list. */
export function parseMatchers(text: string): Matcher[] {
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
    out.push(validateMatcher({ name, value, isRegex: op === '=~' || op === '!~', isEqual: op === '=' || op === '=~' }));
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
