// The agent's disk spool (collectors/agent/spool.ts): order across segments, bounded size, restart recovery,
// torn tails cut off. Real files in a temp dir; no broker needed.
import { appendFileSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { crc32, DiskSpool, encodeRecord } from '../collectors/agent/spool.js';

const dirs: string[] = [];
const tmp = () => { const d = mkdtempSync(join(tmpdir(), 'rs-spool-')); dirs.push(d); return d; };
afterAll(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

const value = (i: number, size = 100) => { const b = Buffer.alloc(size, 0x2e); b.write(`${i};`); return b; };

async function drain(s: DiskSpool, batch = 7): Promise<string[]> {
  const out: string[] = [];
  while (!s.empty) {
    const recs = await s.read(batch, 1 << 20);
    expect(recs.length).toBeGreaterThan(0);
    for (const r of recs) out.push(r.value.toString('utf8').split(';')[0]);
    await s.commit(recs[recs.length - 1].next, recs.length);
  }
  return out;
}

describe('DiskSpool', () => {
  it('checks records with CRC-32 (IEEE): the check value of "123456789" and a flipped bit', () => {
    expect(crc32(Buffer.from('123456789'))).toBe(0xcbf43926);
    const r = encodeRecord('host-a', Buffer.from([1, 2, 3]));
    expect(r.readUInt32LE(4)).toBe(crc32(r.subarray(8)));
    r[r.length - 1]! ^= 1;
    expect(r.readUInt32LE(4)).not.toBe(crc32(r.subarray(8)));
  });

  it('replays records in append order across segment files and deletes consumed segments', async () => {
    const dir = tmp();
    const s = await DiskSpool.open({ dir, segmentBytes: 1000, fsync: 'never' });
    for (let i = 0; i < 100; i++) expect(s.append(`host-${i % 3}`, value(i))).not.toBeNull();
    await s.flush();
    expect(readdirSync(dir).filter((f) => f.endsWith('.seg')).length).toBeGreaterThan(5);
    const got = await drain(s);
    expect(got).toEqual(Array.from({ length: 100 }, (_, i) => String(i)));
    expect(s.bytes).toBe(0);
    expect(readdirSync(dir).filter((f) => f.endsWith('.seg')).length).toBeLessThanOrEqual(1);
    await s.close();
  });

  it('refuses records beyond maxBytes and accepts again once the head is acknowledged', async () => {
    const s = await DiskSpool.open({ dir: tmp(), maxBytes: 10 * (100 + 8 + 2 + 1), fsync: 'never' });
    let accepted = 0;
    for (let i = 0; i < 20; i++) if (s.append('h', value(i))) accepted++;
    expect(accepted).toBe(10);
    const recs = await s.read(4);
    await s.commit(recs[3].next, 4);
    expect(s.append('h', value(99))).not.toBeNull();
    await s.close();
  });

  it('keeps unacknowledged records across a restart, in order, and cuts a torn tail', async () => {
    const dir = tmp();
    const a = await DiskSpool.open({ dir, segmentBytes: 700, fsync: 'always' });
    for (let i = 0; i < 30; i++) a.append('h', value(i));
    const first = await a.read(10);
    await a.commit(first[9].next, 10);
    await a.close();
    // a crash in the middle of the next append: half a record at the end of the last segment
    const segs = readdirSync(dir).filter((f) => f.endsWith('.seg')).sort();
    const torn = encodeRecord('h', value(30));
    appendFileSync(join(dir, segs[segs.length - 1]), torn.subarray(0, 50));
    const b = await DiskSpool.open({ dir, segmentBytes: 700, fsync: 'always' });
    expect(b.truncatedBytes).toBe(50);
    expect(b.records).toBe(20);
    b.append('h', value(31));
    expect(await drain(b, 3)).toEqual([...Array.from({ length: 20 }, (_, i) => String(i + 10)), '31']);
    await b.close();
  });

  it('a record appended while a commit empties the spool is kept (found by the soak test: the agent then spun forever)', async () => {
    const s = await DiskSpool.open({ dir: tmp(), fsync: 'never' });
    for (let round = 0; round < 20; round++) {
      await s.append('h', value(round))!;
      const recs = await s.read(10, 1 << 20);
      expect(recs.map((r) => r.value.toString('utf8').split(';')[0])).toEqual([String(round)]);
      // the commit empties the spool and starts a fresh segment; an append made meanwhile must survive it
      const committing = s.commit(recs[0]!.next, 1);
      for (let k = 0; k < round % 4; k++) await Promise.resolve(); // at different points of the commit
      const appended = s.append('h', value(1000 + round))!;
      await committing; await appended;
      expect(s.records).toBe(1);
      expect(await drain(s)).toEqual([String(1000 + round)]);
      expect(s.bytes).toBe(0);
    }
    await s.close();
  });
});

