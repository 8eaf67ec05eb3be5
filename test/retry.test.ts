// services/lib/retry.ts: the one retry loop of the adapters (Kafka connect and send, store inserts, webhooks).
import { describe, expect, it } from 'vitest';
import { backoffMs, retry } from '../services/lib/retry.js';

describe('retry', () => {
  it('retries until success, waiting linear or exponential steps capped at maxMs', async () => {
    const waits: number[] = [];
    let calls = 0;
    const r = await retry(async (attempt) => { calls++; if (attempt < 5) throw new Error('not yet'); return attempt; },
      { tries: 10, baseMs: 100, maxMs: 350, sleep: async (ms) => { waits.push(ms); } });
    expect([r, calls]).toEqual([5, 5]);
    expect(waits).toEqual([100, 200, 300, 350]);
    expect([1, 2, 3, 4, 5].map((a) => backoffMs(a, { baseMs: 200, maxMs: 5_000, backoff: 'exponential' }))).toEqual([200, 400, 800, 1600, 3200]);
  });

  it('rethrows the last error after `tries`, at once for an error `retriable` refuses, and when `stop` says so', async () => {
    const sleep = async () => {};
    let n = 0;
    await expect(retry(async () => { n++; throw new Error(`e${n}`); }, { tries: 3, sleep })).rejects.toThrow('e3');
    n = 0;
    await expect(retry(async () => { n++; throw new Error('permanent'); }, { tries: 9, sleep, retriable: () => false })).rejects.toThrow('permanent');
    expect(n).toBe(1);
    let closed = false;
    n = 0;
    await expect(retry(async () => { n++; if (n === 2) closed = true; throw new Error('down'); }, { tries: Infinity, sleep, stop: () => closed })).rejects.toThrow('down');
    expect(n).toBe(2);
  });
});
