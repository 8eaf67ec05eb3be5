// Regex matchers cannot freeze the API (issue 16): patterns that make a backtracking engine take exponential
// or high-polynomial time, sent as `filter=` on GET /api/v2/alerts by a read token and stored as a silence by
// an admin, against a 4,000-character label value. The API runs as users run it (`revokescope serve` in its
// own process, a chDB data dir), so a frozen server is seen from outside: a request that gets no answer
// within LIVENESS_MS fails the test instead of hanging it, and the server is killed afterwards.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from './store-fixtures.js';

const CLI = 'dist/services/cli/main.js';
const ADMIN = 'admin-redos-0123456789abcdef';
const READ = 'read-redos-0123456789abcdef';
/** A liveness bound, not a speed target: the linear-time engine answers in milliseconds; the backtracking
 * one took from 6 s to well over 120 s for one request (and froze /healthz meanwhile). */
const LIVENESS_MS = 20_000;
const BLOB = 'a'.repeat(4000);
const EVIL = ['(.|.|.)*x', '((.)+)+x', `${'.*'.repeat(24)}x`, '(a|aa)*x', '(a*)*x'];

const tmp = tempDir('revokescope-redos-');

interface Server { child: ChildProcess; url: string; exited: Promise<number | null>; output: () => string }

async function serve(): Promise<Server> {
  const child = spawn(process.execPath, [CLI, 'serve', '--data-dir', tmp.dir, '--port', '0'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, REVOKESCOPE_API_TOKENS: `admin:${ADMIN},read:${READ}`, REVOKESCOPE_EVALUATION_INTERVAL_MS: '3600000' },
  });
  let out = '';
  child.stdout!.on('data', (d) => { out += d; });
  child.stderr!.on('data', (d) => { out += d; });
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  const url = await new Promise<string>((resolve, reject) => {
    const t = setTimeout(() => { clearInterval(poll); reject(new Error(`serve printed no API line:\n${out}`)); }, 90_000);
    const poll = setInterval(() => {
      const m = /API: (http:\/\/127\.0\.0\.1:\d+)/.exec(out);
      if (m) { clearInterval(poll); clearTimeout(t); resolve(m[1]!); }
    }, 50);
    void exited.then((code) => { clearInterval(poll); clearTimeout(t); reject(new Error(`serve exited ${code}:\n${out}`)); });
  });
  return { child, url, exited, output: () => out };
}

let server: Server | undefined;

function req(path: string, init: RequestInit & { token?: string } = {}): Promise<Response> {
  const { token = READ, ...rest } = init;
  return fetch(server!.url + path, { ...rest, signal: AbortSignal.timeout(LIVENESS_MS),
    headers: { authorization: `Bearer ${token}`, ...(rest.body ? { 'content-type': 'application/json' } : {}) } });
}
const filter = (m: string): string => `/api/v2/alerts?filter=${encodeURIComponent(m)}`;
const alertNames = async (r: Response): Promise<string[]> => {
  expect(r.status).toBe(200);
  return ((await r.json()) as { labels: Record<string, string> }[]).map((a) => a.labels.alertname!);
};

async function stop(s: Server): Promise<number | null> {
  s.child.kill('SIGTERM');
  const code = await Promise.race([s.exited, new Promise<'hung'>((r) => setTimeout(() => r('hung'), LIVENESS_MS))]);
  if (code === 'hung') { s.child.kill('SIGKILL'); throw new Error(`serve ignored SIGTERM for ${LIVENESS_MS} ms`); }
  return code;
}

beforeAll(async () => {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npm run build\` first`);
  server = await serve();
  // A rule that always fires (a finding count >= 0 over an empty store) and carries a long label value.
  const rule = await req('/api/v1/rules', { method: 'POST', token: ADMIN, body: JSON.stringify({
    id: 'long-label', name: 'LongLabel', query: { type: 'finding_count', window: '5m' }, threshold: { op: '>=', value: 0 },
    labels: { blob: BLOB, severity: 'warning' } }) });
  expect(rule.status, await rule.clone().text()).toBe(201);
  expect((await req('/api/v1/alerts/evaluate', { method: 'POST', token: ADMIN })).status).toBe(200);
});

afterAll(async () => {
  if (server && server.child.exitCode === null) server.child.kill('SIGKILL');
  tmp.remove();
});

describe('filters on GET /api/v2/alerts', () => {
  it('the alert with the long label is there', async () => {
    expect(await alertNames(await req('/api/v2/alerts'))).toContain('LongLabel');
  });

  for (const pattern of EVIL) {
    it(`blob=~"${pattern}" answers (no match), its negation matches, /healthz stays up`, async () => {
      const [hit, miss, health] = await Promise.all([
        req(filter(`blob=~"${pattern}"`)), req(filter(`blob!~"${pattern}"`)), req('/healthz', { token: '' })]);
      expect(await alertNames(hit)).toEqual([]);
      expect(await alertNames(miss)).toContain('LongLabel');
      expect(health.status).toBe(200);
    });
  }

  it('a catastrophic pattern that does match ("(.|.|.)*a") selects the alert; matching is anchored', async () => {
    expect(await alertNames(await req(filter('blob=~"(.|.|.)*a"')))).toEqual(['LongLabel']);
    expect(await alertNames(await req(filter('blob=~"a"')))).toEqual([]); // not a substring search
    expect(await alertNames(await req(filter('alertname=~"Long.*"')))).toEqual(['LongLabel']);
  });

  it('the receiver regex goes through the same engine', async () => {
    expect(await alertNames(await req(`/api/v2/alerts?receiver=${encodeURIComponent('(.|.|.)*x')}`))).toEqual([]);
    expect(await alertNames(await req(`/api/v2/alerts?receiver=${encodeURIComponent('(r|re|rev)*okescope')}`))).toContain('LongLabel');
  });

  it('a pattern RE2 refuses is a 400 that says why', async () => {
    const r = await req(filter('blob=~"(?=a)a"'));
    expect(r.status).toBe(400);
    expect((await r.json()).message).toMatch(/RE2/);
    const big = await req(filter('blob=~"(.?){999}x"'));
    expect(big.status).toBe(400);
    expect((await big.json()).message).toMatch(/too complex/);
  });
});

describe('a stored silence with such matchers', () => {
  it('reads, /healthz and a restart stay responsive; the silence still applies after the restart', async () => {
    const now = Date.now();
    const post = (matchers: unknown[]) => req('/api/v2/silences', { method: 'POST', token: ADMIN, body: JSON.stringify({
      matchers, startsAt: new Date(now).toISOString(), endsAt: new Date(now + 3600_000).toISOString(), createdBy: 'test', comment: 'redos' }) });
    // one that never matches (the costly case for a backtracking engine) and one that matches
    const never = await post([{ name: 'blob', value: '((.)+)+x', isRegex: true }]);
    expect(never.status, await never.clone().text()).toBe(200);
    const matching = await post([{ name: 'blob', value: '(.|.|.)*a', isRegex: true }, { name: 'alertname', value: 'LongLabel', isRegex: false }]);
    expect(matching.status).toBe(200);
    const { silenceID } = await matching.json() as { silenceID: string };

    const check = async (): Promise<void> => {
      const [alerts, health, silences] = await Promise.all([req('/api/v2/alerts'), req('/healthz', { token: '' }), req('/api/v2/silences')]);
      expect(health.status).toBe(200);
      expect(silences.status).toBe(200);
      const list = (await alerts.json()) as { labels: Record<string, string>; status: { state: string; silencedBy: string[] } }[];
      const long = list.find((a) => a.labels.alertname === 'LongLabel');
      expect(long?.status).toMatchObject({ state: 'suppressed', silencedBy: [silenceID] });
      for (const p of EVIL) expect(await alertNames(await req(filter(`blob=~"${p}"`)))).toEqual([]);
    };
    await check();

    expect(await stop(server!)).toBe(0);
    server = await serve(); // silences are stored: the new process loads and evaluates them
    await check();
  });
});
