// One rule evaluator per store: two API instances in one process on one chDB store (one client), each with its
// own alerting engine, and one webhook receiver (a real local HTTP server). Only the holder of the lease
// (services/api/alerting/lease.ts) evaluates and notifies; the other takes over when the holder stops, or when
// its claim lapses.
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { ClickHouseClient } from '@clickhouse/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { storeWithFleet } from './support/api-fixtures.js';
import { startApi, type TestApi } from './support/api-server.js';

const T0 = Date.now() - 13 * 60_000;
let client: ClickHouseClient;
let hookServer: Server;
let hookUrl = '';
const hooks: { groupKey: string; status: string; alertnames: string[] }[] = [];
const opened: TestApi[] = [];

const readBody = (req: IncomingMessage): Promise<string> => new Promise((res) => { let s = ''; req.on('data', (c) => (s += c)); req.on('end', () => res(s)); });
/** Poll until `cond` holds (a deadline for a hung test, not a timing assertion). */
async function until(what: string, cond: () => boolean | Promise<boolean>, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`gave up waiting for ${what}: ${JSON.stringify(hooks)} ${JSON.stringify(opened.map((o) => [o.engine.lease.held, o.engine.lastEvaluation, o.engine.counts()]))}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
/** A fresh store with the fleet (each describe its own: alert state persists in the store; chDB opens one data
 * directory per process, so the previous store's APIs and client are closed first). */
async function freshStore(): Promise<void> {
  for (const a of opened.splice(0)) await a.app.close();
  if (client) await client.close();
  ({ client } = await storeWithFleet(T0));
}
async function api(o: Parameters<typeof startApi>[1]): Promise<TestApi> {
  const a = await startApi(client, { security: { rateLimitMax: 0 }, ...o });
  opened.push(a);
  return a;
}

beforeAll(async () => {
  hookServer = createServer(async (req, res) => {
    const body = JSON.parse(await readBody(req));
    hooks.push({ groupKey: body.groupKey, status: body.status, alertnames: body.alerts.map((a: any) => a.labels.alertname) });
    res.writeHead(200).end('{}');
  });
  await new Promise<void>((r) => hookServer.listen(0, '127.0.0.1', r));
  hookUrl = `http://127.0.0.1:${(hookServer.address() as { port: number }).port}/hook`;
});

afterAll(async () => {
  for (const a of opened) await a.app.close().catch(() => undefined);
  hookServer?.close();
  await client?.close();
});

describe('the lease, step by step (pinned clock, evaluations by hand)', () => {
  it('one holder; the other follows, takes over when the holder\'s claim lapses or it stops', async () => {
    await freshStore();
    let now = T0 + 60_000;
    const clock = (): number => now;
    const alerting = { leaseTtlMs: 30_000 };
    const a = await api({ now: clock, alerting, holder: 'replica-a' });
    const b = await api({ now: clock, alerting, holder: 'replica-b' });
    expect(await a.engine.evaluate()).toBe(true);
    expect(await b.engine.evaluate()).toBe(false);
    // the follower serves what the holder evaluated
    const firing = async (t: TestApi) => ((await (await fetch(`${t.url}/api/v1/alerts?state=firing`)).json()) as any).alerts
      .map((x: any) => x.fingerprint).sort();
    expect((await firing(a)).length).toBeGreaterThan(0);
    expect(await firing(b)).toEqual(await firing(a));
    now += 20_000; // within the ttl: the holder renews and keeps it
    expect(await b.engine.evaluate()).toBe(false);
    expect(await a.engine.evaluate()).toBe(true);
    now += 31_000; // a does not renew for longer than the ttl (as if it hung or died): b takes over
    expect(await b.engine.evaluate()).toBe(true);
    expect(await a.engine.evaluate()).toBe(false); // a's claim lapsed: it queues behind b
    expect(await b.engine.evaluate()).toBe(true);
    await b.app.close(); // a clean stop withdraws the claim: a holds at its next evaluation
    expect(await a.engine.evaluate()).toBe(true);
    await a.app.close();
  });
});

describe('two API instances with their evaluator loops and one webhook', () => {
  it('sends one notification per alert group while both run, and the second takes over after the first stops', async () => {
    await freshStore();
    const alerting = { evaluationIntervalMs: 200, receivers: [{ name: 'ops', type: 'webhook' as const, url: hookUrl }], notifyBackoffMs: 50 };
    const x = await api({ evaluate: true, alerting, holder: 'loop-x' });
    const y = await api({ evaluate: true, alerting, holder: 'loop-y' });
    // the default rules that fire at once (for: 0s) over the fleet: four groups (group_by alertname)
    const firstGroups = ['CollectorSilent', 'RevokeLockHeldOpen', 'RevokeLockNotHeld', 'RevokeSkippedZap'];
    await until('the four groups', () => firstGroups.every((n) => hooks.some((h) => h.alertnames.includes(n))));
    // both keep evaluating for a while: ten more ticks of each
    const ticks = async (...apis: TestApi[]): Promise<void> => {
      for (const t of apis) {
        let seen = t.engine.lastEvaluation;
        let n = 0;
        await until('ten ticks', () => {
          if (t.engine.lastEvaluation > seen) { n++; seen = t.engine.lastEvaluation; }
          return n >= 10;
        });
      }
    };
    await ticks(x, y);
    expect([x.engine.lease.held, y.engine.lease.held].filter(Boolean)).toHaveLength(1);
    const perGroup = (): Record<string, number> => {
      const out: Record<string, number> = {};
      for (const h of hooks) out[h.groupKey] = (out[h.groupKey] ?? 0) + 1;
      return out;
    };
    const before = perGroup();
    expect(Object.keys(before)).toHaveLength(firstGroups.length);
    expect(Object.values(before).every((n) => n === 1), JSON.stringify(before)).toBe(true);

    const [holder, other] = x.engine.lease.held ? [x, y] : [y, x];
    await holder.app.close();
    // a new group appears (a rule created through the survivor): only the survivor can send it
    const created = await fetch(`${other.url}/api/v1/rules`, { method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ id: 'fleet-has-hosts', name: 'FleetHasHosts', query: { type: 'host_silent', window: '24h', groupBy: ['hostname'] },
        threshold: { op: '>=', value: 0 }, for: '0s', labels: { severity: 'info' } }) });
    expect(created.status).toBe(201);
    await until('the new group', () => hooks.some((h) => h.alertnames.includes('FleetHasHosts')));
    await ticks(other);
    expect(other.engine.lease.held).toBe(true);
    const after = perGroup();
    // one more group, sent once; the survivor knew what the first holder had sent (no resend of the four)
    expect(Object.keys(after)).toHaveLength(firstGroups.length + 1);
    expect(Object.values(after).every((n) => n === 1), JSON.stringify(after)).toBe(true);
  });
});
