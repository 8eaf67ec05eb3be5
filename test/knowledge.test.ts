// The device knowledge's shortcuts (services/core/correlator/knowledge.ts) against the judgements they stand for: the
// hot paths ask memoryEnabledValue() / memoryEnabledKnown() instead of building memoryEnabled(), so they must agree
// in every state the pieces can be in.
import { describe, expect, it } from 'vitest';
import { DeviceKnowledge } from '../services/core/correlator/knowledge.js';

describe('DeviceKnowledge shortcuts', () => {
  it('memoryEnabledValue and memoryEnabledKnown agree with memoryEnabled() in all 3 × 2^6 states', () => {
    let states = 0;
    for (const memFact of [null, false, true]) {
      for (let bits = 0; bits < 64; bits++) {
        const k = new DeviceKnowledge();
        k.memFact = memFact;
        k.memBit = (bits & 1) !== 0; k.memBitKnown = (bits & 2) !== 0;
        k.lowPower = (bits & 4) !== 0; k.lowPowerKnown = (bits & 8) !== 0;
        k.noCmd = (bits & 16) !== 0; k.noCmdKnown = (bits & 32) !== 0;
        const j = k.memoryEnabled();
        expect([k.memoryEnabledValue(), k.memoryEnabledKnown()]).toEqual([j.value, j.known]);
        expect(j.known).toBe(j.unknown.length === 0);
        states++;
      }
    }
    expect(states).toBe(192);
  });
});
