// MappingState keeps its counts of device-fd and DMABUF-backed mappings as the list changes (an acquire reads them
// instead of walking the list): they agree with a walk of the list after any sequence of mmaps (new ids and ids
// mapped again with another backing), munmaps, close, loss, overflow past MAX_MAPPINGS and a checkpoint round trip.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MAX_MAPPINGS, MappingState, type Mapping } from '../services/core/correlator/mapping.js';
import { Backing } from '../services/core/model.js';

const mapping = (backing: Backing, bar = 0, populated = false): Mapping => ({ bar, backing, populated, faulted: false, revoked: false, revokedKnown: false });
const backing = fc.constantFrom(Backing.LEGACY, Backing.DMABUF, Backing.CUSTOM_VM_OPS);
const op = fc.oneof(
  { weight: 6, arbitrary: fc.tuple(fc.integer({ min: 0, max: 20 }), backing, fc.integer({ min: 0, max: 5 }), fc.boolean()).map(([id, b, bar, populated]) => ({ add: id, b, bar, populated })) },
  { weight: 4, arbitrary: fc.integer({ min: 0, max: 25 }).map((id) => ({ remove: id })) },
  { weight: 1, arbitrary: fc.constant({ close: true }) },
  { weight: 1, arbitrary: fc.constant({ forget: true }) },
  { weight: 1, arbitrary: fc.constant({ flood: true }) },
  { weight: 1, arbitrary: fc.constant({ roundTrip: true }) },
);

describe('MappingState counts', () => {
  it('agree with a walk of the live list (and so do hasDeviceMapping and hasUncovered)', () => {
    fc.assert(fc.property(fc.array(op, { maxLength: 120 }), (ops) => {
      let m = new MappingState();
      for (const o of ops) {
        if ('add' in o) m.add(o.add, mapping(o.b, o.bar, o.populated));
        else if ('remove' in o) m.remove(o.remove);
        else if ('close' in o) m.closeDeviceFd();
        else if ('forget' in o) m.forget();
        else if ('flood' in o) for (let id = 1000; id < 1000 + MAX_MAPPINGS + 2; id++) m.add(id, mapping(id % 3 === 0 ? Backing.DMABUF : Backing.LEGACY));
        else m = MappingState.fromState(JSON.parse(JSON.stringify(m.toState())));
        const walked = m.count();
        expect([m.deviceCount, m.dmabufCount]).toEqual([walked.device, walked.dmabuf]);
        expect(m.hasDeviceMapping()).toBe(m.deviceMappings().length > 0);
        // SKIPPED_ZAP's question without the list: a device-fd mapping on a BAR no zap reached (populated, before 6.11)
        for (const bars of [0, 0b1, 0b10101, 0b111111]) for (const populatedOnly of [false, true]) {
          const listed = m.deviceMappings().filter(([, x]) => ((bars >> x.bar) & 1) === 0 && (x.populated || !populatedOnly));
          expect(m.hasUncovered(bars, populatedOnly)).toBe(listed.length > 0);
        }
      }
    }), { numRuns: 300 });
  });

  it('overflow drops the list and its counts', () => {
    const m = new MappingState();
    for (let id = 0; id <= MAX_MAPPINGS; id++) m.add(id, mapping(Backing.LEGACY));
    expect(m.overflowed).toBe(true);
    expect([m.deviceCount, m.dmabufCount]).toEqual([1, 0]); // the list starts over with the mapping that overflowed it
  });
});
