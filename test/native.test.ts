// Raw-event rows from the wire scan (EventBlock.addScan, what the embedded pipeline writes) must be the
// same Native block, byte for byte, as rows from the protobufjs-decoded batch (EventBlock.add, what
// writeBatch writes): on a simulated fleet with faults and on random events. Pure: no engine needed (the
// block's layout itself is checked against chDB by the store and pipeline tests).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { simulate } from '../collectors/simulator/index.js';
import { v1, type EventBatch } from '../services/core/model.js';
import { BatchScan } from '../services/core/wire.js';
import { EventBlock } from '../services/store/native.js';
import { event, u64 } from './support/arbitraries.js';

const S = 1e9;
const OFFSET = [0x89abcdef, 0x17] as const;

/** Both blocks for the same frames: from decoded batches, from scans of their bytes. */
function blocks(frames: readonly Uint8Array[]): [Buffer, Buffer] {
  const decoded = new EventBlock(16), scanned = new EventBlock(16);
  const scan = new BatchScan();
  for (const f of frames) {
    const b = v1.EventBatch.decode(f);
    decoded.add(b.host?.hostname ?? '', b.host?.bootId ?? '', Number(b.firstSeq), OFFSET, b.events);
    scanned.addScan(scan.read(f), OFFSET);
  }
  expect(scanned.rows).toBe(decoded.rows);
  return [decoded.take(), scanned.take()];
}

const encode = (b: EventBatch): Uint8Array => v1.EventBatch.encode(b).finish();

describe('raw-event rows from the wire scan', () => {
  it('equal the rows from decoded batches on a simulated fleet with faults (every era, driver and body)', () => {
    const { batches } = simulate({ hosts: 20, durationNs: 30 * S, seed: 9 });
    const frames = batches.map(encode);
    const [a, b] = blocks(frames);
    expect(a.length).toBeGreaterThan(100_000);
    expect(b.equals(a)).toBe(true);
  });

  it('equal them on random events (every field, unset optional bools, non-ASCII names)', () => {
    const odd = fc.constantFrom('qemu-system-x86', 'vfio-pci ▲', 'ÿ', '0000:3b:00.0');
    fc.assert(fc.property(
      fc.array(fc.tuple(fc.array(event, { maxLength: 12 }), u64, odd, odd), { minLength: 1, maxLength: 6 }),
      (batches) => {
        const frames = batches.map(([events, firstSeq, hostname, comm]) =>
          encode({ host: { hostname, bootId: 'b' }, firstSeq, events: events.map((e, i) => (i % 3 === 0 ? { ...e, comm } : e)) }));
        const [a, b] = blocks(frames);
        expect(b.equals(a)).toBe(true);
      }), { numRuns: 200 });
  });

  it('readHeader gives the full scan\'s header and first ts without reading the events', () => {
    const { batches } = simulate({ hosts: 5, durationNs: 10 * S, seed: 2 });
    const full = new BatchScan(), head = new BatchScan();
    for (const f of batches.map(encode)) {
      full.read(f);
      head.readHeader(f);
      expect([head.host, head.firstSeq, head.dropped, head.count]).toEqual([full.host, full.firstSeq, full.dropped, full.count]);
      if (full.count > 0) expect(head.ts[0]).toBe(full.ts[0]);
    }
  });
});
