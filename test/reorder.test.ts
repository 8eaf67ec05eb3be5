// The reorder buffer (services/core/correlator/reorder.ts): it releases in (ts, tie key, cpu, arrival) order
// whatever the arrival order, and its work is O(n log n) for any order — counted in entry shifts and heap
// steps, not timed (issue 16: one descending batch of 80,000 events took 19 s with insertion sorting).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { simulate } from '../collectors/simulator/index.js';
import { analyzeFrames } from '../services/core/analysis.js';
import { ReorderBuffer, RUN_REACH, tieKey } from '../services/core/correlator/reorder.js';
import { EventFields as EV } from '../gen/fields.js';
import { BODIES } from '../services/core/validate.js';
import { bodyFieldOf, bodyOf, v1, type BodyKind, type Event } from '../services/core/model.js';

/** The device every pushed event names (the buffer keeps what it is given). */
const D = { name: 'd' };
const KINDS: BodyKind[] = ['deviceInfo', 'lockAcquire', 'zap', 'lockRelease', 'barMunmap'];

interface Pushed { ev: Event; kind: BodyKind; arrival: number }

/** The contract, written the slow and obvious way: a stable sort of everything pending. */
function referenceOrder(pending: Pushed[]): Pushed[] {
  const key = (p: Pushed): number[] => [p.ev.tsNs as number, tieKey(p.kind, p.ev.tid ?? 0), p.ev.cpu ?? 0, p.arrival];
  return [...pending].sort((a, b) => {
    const x = key(a), y = key(b);
    for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return x[i]! - y[i]!;
    return 0;
  });
}

const pushedEvent = fc.record({
  ts: fc.integer({ min: 0, max: 400 }), // narrow: many equal timestamps, so every tie key is exercised
  kind: fc.constantFrom(...KINDS),
  tid: fc.integer({ min: 0, max: 3 }),
  cpu: fc.integer({ min: 0, max: 3 }),
});

/** n events with distinct timestamps 0..n-1 in the given arrival order. */
function pushAll(buf: ReorderBuffer, tsInArrivalOrder: number[]): void {
  for (const ts of tsInArrivalOrder) buf.pushEvent({ tsNs: ts, device: 'd', cpu: ts % 8, tid: 1, lockRelease: {} }, ts, EV.lockRelease, D);
}

function releasedTs(buf: ReorderBuffer): number[] {
  const out: number[] = [];
  buf.release(Infinity, (_ev, ts) => out.push(ts));
  return out;
}

let lcg = 1;
const rand = (): number => { lcg = (lcg * 1103515245 + 12345) % 2 ** 31; return lcg / 2 ** 31; };

const ORDERS: Record<string, (n: number) => number[]> = {
  ascending: (n) => Array.from({ length: n }, (_, i) => i),
  descending: (n) => Array.from({ length: n }, (_, i) => n - 1 - i),
  'eight sorted runs one after another': (n) => [0, 1, 2, 3, 4, 5, 6, 7].flatMap((r) => Array.from({ length: n }, (_, i) => i).filter((i) => i % 8 === r)),
  shuffled: (n) => { const a = Array.from({ length: n }, (_, i) => i); for (let i = n - 1; i > 0; i--) { const j = Math.floor(rand() * (i + 1)); [a[i], a[j]] = [a[j]!, a[i]!]; } return a; },
  'sawtooth (descending runs of 100)': (n) => Array.from({ length: n }, (_, i) => Math.floor(i / 100) * 100 + 99 - (i % 100)).filter((t) => t < n),
};

describe('bodyFieldOf', () => {
  it('and bodyOf name the same member (field numbers and names agree), for every set of members an event may carry', () => {
    for (let set = 0; set < 1 << BODIES.length; set++) {
      const ev: Event = { tsNs: 1, device: 'd' };
      BODIES.forEach((k, bit) => { if ((set >> bit) & 1) (ev as Record<BodyKind, object>)[k] = {}; });
      const kind = bodyOf(ev);
      expect(bodyFieldOf(ev)).toBe(kind ? EV[kind] : 0);
    }
  });
});

describe('release order', () => {
  it('is (ts, tie key, cpu, arrival) for any arrival order, across interleaved releases', () => {
    fc.assert(fc.property(
      fc.array(fc.oneof(
        { weight: 9, arbitrary: pushedEvent.map((e) => ({ push: e })) },
        { weight: 1, arbitrary: fc.integer({ min: 0, max: 400 }).map((w) => ({ release: w })) },
      ), { maxLength: 600 }),
      (ops) => {
        const buf = new ReorderBuffer();
        let pending: Pushed[] = [];
        let arrival = 0;
        const got: Event[] = [], want: Event[] = [];
        const release = (w: number): void => {
          buf.release(w, (ev) => got.push(ev));
          const ready = referenceOrder(pending.filter((p) => (p.ev.tsNs as number) <= w));
          want.push(...ready.map((p) => p.ev));
          pending = pending.filter((p) => (p.ev.tsNs as number) > w);
        };
        for (const op of ops) {
          if ('release' in op) { release(op.release); continue; }
          const { ts, kind, tid, cpu } = op.push;
          const ev: Event = { tsNs: ts, device: 'd', tid, cpu, [kind]: {} };
          buf.pushEvent(ev, ts, EV[kind], D);
          pending.push({ ev, kind, arrival: arrival++ });
        }
        expect(buf.size).toBe(pending.length);
        release(Infinity);
        expect(got).toEqual(want);
        for (let i = 0; i < got.length; i++) expect(got[i]).toBe(want[i]); // the same events, not look-alikes
        expect(buf.size).toBe(0);
      },
    ), { numRuns: 300 });
  });

  it('hands each event its own body field, whatever its tid (a decoded event from a text trace may carry 2^32 or more)', () => {
    // npm run fuzz found this: a body field taken from the tie key (rank × 2^32 + tid) named the next rank's member
    const buf = new ReorderBuffer();
    const tids = [0, 2 ** 32 - 1, 2 ** 32, 2 ** 32 + 7, 2 ** 40, Number.MAX_SAFE_INTEGER];
    const pushed: Event[] = [];
    tids.forEach((tid, i) => KINDS.forEach((kind, k) => {
      const ev: Event = { tsNs: 10 * i + k, device: 'd', tid, [kind]: {} };
      buf.pushEvent(ev, ev.tsNs as number, EV[kind], D);
      pushed.push(ev);
    }));
    const got: [Event, number][] = [];
    buf.release(Infinity, (ev, _ts, _d, field) => got.push([ev, field]));
    expect(got.map(([ev]) => ev)).toEqual(pushed);
    for (const [ev, field] of got) expect(field).toBe(bodyFieldOf(ev));
  });

  it('pending() lists events in release order, so a checkpoint restored by pushing them releases the same order', () => {
    fc.assert(fc.property(fc.array(pushedEvent, { maxLength: 300 }), (evs) => {
      const buf = new ReorderBuffer();
      const pushed: Pushed[] = evs.map(({ ts, kind, tid, cpu }, arrival) => {
        const ev: Event = { tsNs: ts, device: 'd', tid, cpu, [kind]: {} };
        buf.pushEvent(ev, ts, EV[kind], D);
        return { ev, kind, arrival };
      });
      const pending = buf.pending(() => { throw new Error('no bytes were pushed'); });
      expect(pending).toEqual(referenceOrder(pushed).map((p) => p.ev));
      const restored = new ReorderBuffer();
      for (const ev of pending) {
        restored.pushEvent(ev, ev.tsNs as number, bodyFieldOf(ev), D);
      }
      const again: Event[] = [];
      restored.release(Infinity, (ev) => again.push(ev));
      expect(again).toEqual(pending);
    }), { numRuns: 200 });
  });
});

describe('work is O(n log n) for any arrival order', () => {
  const n = 80_000;
  // Insertion shifts at most RUN_REACH entries per event; a heap push or pop walks at most log2(n) levels.
  const bound = n * (RUN_REACH + 2 * Math.ceil(Math.log2(n)));
  for (const [name, order] of Object.entries(ORDERS)) {
    it(`${name}: ${n} events sorted within ${bound} shifts + heap steps`, () => {
      const buf = new ReorderBuffer();
      const ts = order(n);
      pushAll(buf, ts);
      const out = releasedTs(buf);
      expect(out).toEqual(Array.from({ length: ts.length }, (_, i) => i));
      const work = buf.work.shifted + buf.work.heapSteps;
      expect(work).toBeLessThanOrEqual(bound);
      if (name === 'ascending') expect(work).toBe(0);
    });
  }

  it('the nearly sorted arrival of a simulated host needs (almost) no heap', () => {
    const { batches } = simulate({ hosts: 1, durationNs: 60e9, seed: 5, devicesPerHost: [8, 8] });
    const buf = new ReorderBuffer();
    let events = 0;
    for (const b of batches) for (const ev of b.events ?? []) {
      events++;
      buf.pushEvent(ev, ev.tsNs as number, bodyFieldOf(ev), D);
    }
    expect(events).toBeGreaterThan(1000);
    expect(buf.work.overflowed).toBeLessThanOrEqual(events / 100);
  });
});

describe('the correlator from bytes', () => {
  it('one batch in descending, shuffled or ascending arrival gives the same episodes and findings', () => {
    const { batches } = simulate({ hosts: 1, durationNs: 300e9, seed: 9, devicesPerHost: [16, 16] });
    const events = batches.flatMap((b) => b.events ?? []).sort((a, b) => (a.tsNs as number) - (b.tsNs as number)).slice(0, 20_000);
    expect(events.length).toBe(20_000);
    const frame = (evs: Event[]): Uint8Array => v1.EventBatch.encode({ host: batches[0]!.host, firstSeq: 0, events: evs }).finish();
    const outputs = (evs: Event[]) => {
      const r = analyzeFrames([frame(evs)]);
      return { episodes: r.episodes, findings: r.findings, events: r.stats.events };
    };
    const sorted = outputs(events);
    expect(sorted.episodes.length).toBeGreaterThan(100);
    expect(outputs([...events].reverse())).toEqual(sorted);
    expect(outputs(ORDERS.shuffled!(events.length).map((i) => events[i]!))).toEqual(sorted);
  });
});
