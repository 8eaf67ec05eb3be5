// Alertmanager matchers on the RE2 engine (services/api/alerting/matchers.ts): Alertmanager's semantics
// (anchored `^(?:re)$`, RE2 syntax, `.` not matching a newline), refusals with a reason, and the time budget of
// one evaluation — with a clock the test drives, and once over real HTTP.
import type { ClickHouseClient } from '@clickhouse/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  compileMatcherRegex, MatchBudget, MatchBudgetError, MatcherError, matchesAll, MAX_PROGRAM_SIZE, parseMatchers,
} from '../services/api/alerting/matchers.js';
import { storeWithFleet } from './support/api-fixtures.js';
import { startApi, type TestApi } from './support/api-server.js';

describe('semantics (Alertmanager: labels.NewMatcher compiles ^(?:re)$ with Go regexp, i.e. RE2)', () => {
  it.each([
    ['crit.*', 'critical', true],
    ['crit', 'critical', false], // anchored: no substring search
    ['a|b', 'b', true], // the alternation is wrapped before anchoring
    ['a.b', 'a\nb', false], // `.` does not match a newline...
    ['(?s)a.b', 'a\nb', true], // ...unless the pattern says so
    ['(?i)CRITICAL', 'critical', true],
    ['\\pL+', 'Ünïcödé', true],
    ['[[:digit:]]{3}', '123', true],
    ['(?P<x>a)b', 'ab', true],
    ['((.)+)+x', 'LONG+x', true],
    ['((.)+)+x', 'LONG', false],
  ])('%s on %j → %s', (re, shown, want) => {
    const value = shown.replace('LONG', 'a'.repeat(10_000)); // 10,000 characters
    expect(matchesAll([{ name: 'l', value: re, isRegex: true, isEqual: true }], { l: value })).toBe(want);
    expect(matchesAll([{ name: 'l', value: re, isRegex: true, isEqual: false }], { l: value })).toBe(!want);
  });

  it('an absent label is the empty string', () => {
    expect(matchesAll(parseMatchers('missing=~"x*"'), {})).toBe(true);
    expect(matchesAll(parseMatchers('missing=~"x+"'), {})).toBe(false);
  });

  it.each([
    ['(?=a)', /RE2 syntax/], // lookahead
    ['(?<=a)b', /RE2 syntax/], // lookbehind
    ['(a)\\1', /RE2 syntax/], // backreference
    ['a{1001}', /RE2 syntax/], // RE2's repeat limit
    ['[', /RE2 syntax/],
    ['(.?){999}x', /too complex/],
    ['(.{0,30}){0,30}x', /too complex/],
  ])('refuses %s with a reason', (re, why) => {
    expect(() => compileMatcherRegex(re)).toThrow(MatcherError);
    expect(() => compileMatcherRegex(re)).toThrow(why);
  });

  it('refuses a pattern longer than 512 characters', () => {
    expect(() => compileMatcherRegex('x'.repeat(513))).toThrow(/longer than 512/);
  });

  it(`a list of alternatives that fits in 512 characters stays under ${MAX_PROGRAM_SIZE} instructions`, () => {
    const hosts = Array.from({ length: 50 }, (_, i) => `host-${String(i).padStart(3, '0')}`).join('|');
    expect(hosts.length).toBeLessThanOrEqual(512);
    const re = compileMatcherRegex(hosts);
    expect(re.test('host-042')).toBe(true);
    expect(re.test('host-050')).toBe(false);
    expect(re.programSize).toBeLessThanOrEqual(MAX_PROGRAM_SIZE);
  });
});

describe('time budget of one evaluation', () => {
  it('regex runs past the budget throw MatchBudgetError; remembered answers cost nothing', () => {
    let now = 0;
    const clock = () => now;
    const re = compileMatcherRegex('(b|bb)*c');
    const budget = new MatchBudget(10, clock);
    expect(re.test('bbbb', budget)).toBe(false);
    now = 10; // the budget is spent
    expect(() => re.test('bbbbb', budget)).toThrow(MatchBudgetError);
    expect(re.test('bbbb', budget)).toBe(false); // answered before: from memory, no regex run
    expect(() => matchesAll(parseMatchers('x=~"(b|bb)*d"'), { x: 'b' }, budget)).toThrow(/budget of 10 ms/);
    expect(matchesAll(parseMatchers('x="b"'), { x: 'b' }, budget)).toBe(true); // equality is not regex work
  });
});

describe('over HTTP with a zero budget', () => {
  let client: ClickHouseClient;
  let api: TestApi;
  beforeAll(async () => {
    ({ client } = await storeWithFleet(Date.now()));
    api = await startApi(client, { alerting: { matchBudgetMs: 0 } });
    await api.engine.evaluate();
  });
  afterAll(async () => { await api?.app.close(); await client?.close(); });

  it('a filter or a new silence needing regex work is a 400 naming the budget; plain matchers still work', async () => {
    const all = await (await fetch(`${api.url}/api/v2/alerts`)).json() as unknown[];
    expect(all.length).toBeGreaterThan(0);
    const r = await fetch(`${api.url}/api/v2/alerts?filter=${encodeURIComponent('alertname=~"Revoke(Skipped|Lock).*"')}`);
    expect(r.status).toBe(400);
    expect((await r.json()).message).toMatch(/budget of 0 ms/);
    const plain = await fetch(`${api.url}/api/v2/alerts?filter=${encodeURIComponent('alertname!="nothing"')}`);
    expect(await plain.json()).toHaveLength(all.length);
    const now = Date.now();
    const s = await fetch(`${api.url}/api/v2/silences`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({
      matchers: [{ name: 'hostname', value: 'host-(a|b)z', isRegex: true }], startsAt: new Date(now).toISOString(),
      endsAt: new Date(now + 60_000).toISOString(), createdBy: 't', comment: 'c' }) });
    expect(s.status).toBe(400);
    expect((await s.json()).message).toMatch(/invalid silence: .*budget/);
  });
});
