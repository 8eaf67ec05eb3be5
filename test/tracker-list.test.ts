// TrackerList keeps what a Set keeps, in the same order, for any sequence of adds, deletes (also while iterating) and
// clears; its array stays within twice its members (holes are compacted).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { TrackerList } from '../services/core/correlator/tracker-list.js';

const items = Array.from({ length: 40 }, (_, index) => ({ index }));
const op = fc.oneof(
  { weight: 5, arbitrary: fc.integer({ min: 0, max: 39 }).map((i) => ({ add: i })) },
  { weight: 4, arbitrary: fc.integer({ min: 0, max: 39 }).map((i) => ({ del: i })) },
  { weight: 1, arbitrary: fc.integer({ min: 0, max: 7 }).map((m) => ({ sweep: m })) },
  { weight: 1, arbitrary: fc.constant({ clear: true }) },
);

describe('TrackerList', () => {
  it('agrees with a Set: members, order, size', () => {
    fc.assert(fc.property(fc.array(op, { maxLength: 400 }), (ops) => {
      const list = new TrackerList<{ index: number }>();
      const set = new Set<{ index: number }>();
      for (const o of ops) {
        if ('add' in o) { list.add(items[o.add]!); set.add(items[o.add]!); }
        else if ('del' in o) { list.delete(items[o.del]!); set.delete(items[o.del]!); }
        else if ('sweep' in o) {
          // delete while iterating (what the host's closing flush does): every member whose index % 8 === m
          const seenList: number[] = [], seenSet: number[] = [];
          for (let k = 0; k < list.end; k++) { // the walk the host's per-batch loops use (no iterator object)
            const t = list.at(k);
            if (t) { seenList.push(t.index); if (t.index % 8 === o.sweep) list.delete(t); }
          }
          for (const t of set) { seenSet.push(t.index); if (t.index % 8 === o.sweep) set.delete(t); }
          expect(seenList).toEqual(seenSet);
        } else { list.clear(); set.clear(); }
        expect(list.size).toBe(set.size);
        expect([...list].map((t) => t.index)).toEqual([...set].map((t) => t.index));
        const walked: number[] = [];
        for (let k = 0; k < list.end; k++) { const t = list.at(k); if (t) walked.push(t.index); }
        expect(walked).toEqual([...set].map((t) => t.index));
        for (const t of items) expect(list.has(t)).toBe(set.has(t));
        expect((list as unknown as { used: number }).used).toBeLessThanOrEqual(2 * set.size + 18);
      }
    }), { numRuns: 300 });
  });
});
