// A full spool disk (issue 16): on a small real tmpfs the agent's disk spool runs out of space. A record counts
// as spooled only once written; a failed write keeps nothing (no torn record between its neighbours, none after
// a restart); the collector output counts the lost batch into `dropped` (its seq gap stays), reports it, and
// keeps going; replay never dies. Batches travel through the run's real Kafka broker.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CollectorOutput, type OutputFailure } from '../collectors/agent/spool-output.js';
import { DiskSpool } from '../collectors/agent/spool.js';
import type { Event } from '../services/core/model.js';
import { createKafkaSink } from '../services/transport/kafka/producer.js';
import { readBatches, releaseBroker, topicsFor, useBroker, type TestBroker } from './support/kafka/env.js';
import { hostBatches } from './support/kafka/fleet.js';
import { mountTmpfs, type Tmpfs } from './support/tmpfs.js';

const disks: Tmpfs[] = [];
let unavailable = '';
function disk(bytes: number): Tmpfs | undefined {
  const d = mountTmpfs(bytes);
  if ('unavailable' in d) { unavailable = d.unavailable; return undefined; }
  disks.push(d);
  return d;
}
afterAll(() => { for (const d of disks) d.unmount(); });

const record = (i: number): Buffer => Buffer.from(`${i};`.padEnd(1000, 'x'));
const ids = (recs: { value: Buffer }[]): number[] => recs.map((r) => Number(r.value.toString('utf8').split(';')[0]));

describe('DiskSpool on a full disk', () => {
  it('a write that does not fit fails and keeps nothing; the spool reads, frees and restarts cleanly', async (ctx) => {
    const d = disk(64 << 10);
    if (!d) { console.log(`SKIP full-disk spool test: ${unavailable}`); return ctx.skip(); }
    const s = await DiskSpool.open({ dir: d.dir, maxBytes: 64 << 20, fsync: 'always' });
    const outcomes = await Promise.allSettled(Array.from({ length: 100 }, (_, i) => s.append('h', record(i))!));
    const ok = outcomes.flatMap((o, i) => (o.status === 'fulfilled' ? [i] : []));
    const failed = outcomes.filter((o): o is PromiseRejectedResult => o.status === 'rejected');
    expect(ok.length).toBeGreaterThan(10);
    expect(failed.length).toBeGreaterThan(10);
    expect(failed.every((f) => (f.reason as NodeJS.ErrnoException).code === 'ENOSPC')).toBe(true);
    expect(s.failedWrites).toBe(failed.length);
    expect(s.records).toBe(ok.length); // only what was written counts
    expect(await s.diskBytes()).toBe(s.bytes); // no part of a failed record on disk
    expect(ids(await s.read(1000, 1 << 30))).toEqual(ok);

    // the head is acknowledged: the space comes back and appends succeed again
    const head = await s.read(ok.length, 1 << 30);
    await s.commit(head[head.length - 1]!.next, head.length);
    await expect(s.append('h', record(500))!).resolves.toBeUndefined();
    await expect(s.append('h', record(501))!).resolves.toBeUndefined();
    await s.close();

    // a restart finds exactly the unacknowledged records, nothing torn to cut
    const again = await DiskSpool.open({ dir: d.dir, maxBytes: 64 << 20, fsync: 'always' });
    expect(again.truncatedBytes).toBe(0);
    expect(ids(await again.read(1000, 1 << 30))).toEqual([500, 501]);
    await again.close();
  });

  it('a commit whose cursor file cannot be written leaves the spool usable', async (ctx) => {
    const d = disk(16 << 10);
    if (!d) { console.log(`SKIP full-disk spool test: ${unavailable}`); return ctx.skip(); }
    const s = await DiskSpool.open({ dir: d.dir, maxBytes: 64 << 20, segmentBytes: 4096, fsync: 'never' });
    await Promise.allSettled(Array.from({ length: 40 }, (_, i) => s.append('h', record(i))!));
    const recs = await s.read(2, 1 << 30);
    // The disk is full, and the commit deletes no segment (the head stays in the first one): the cursor write fails.
    await expect(s.commit(recs[1]!.next, 2)).rejects.toMatchObject({ code: 'ENOSPC' });
    expect(readdirSync(d.dir)).not.toContain('cursor.tmp'); // (or it is removed at the next open)
    const rest = await s.read(1000, 1 << 30);
    expect(ids(rest)[0]).toBe(2); // the head moved in memory
    await s.close();
  });
});

describe('collector output through Kafka with a full spool disk', () => {
  let broker: TestBroker;
  beforeAll(async () => {
    broker = await useBroker();
    if (broker.unavailable) console.log(`SKIP kafka full-disk test: ${broker.unavailable}`);
  }, 300_000);
  afterAll(async () => { await releaseBroker(broker); });

  it('lost batches are counted into `dropped` with their seq gap, reported, and the agent keeps going', async (ctx) => {
    if (broker.unavailable) return ctx.skip();
    const d = disk(128 << 10);
    if (!d) { console.log(`SKIP full-disk spool test: ${unavailable}`); return ctx.skip(); }
    const topics = topicsFor('full-disk');
    const sink = await createKafkaSink({ brokers: [broker.bootstrap], ...topics, partitions: 1, lingerMs: 5 });
    const [h] = hostBatches(0, { hosts: 1, cycles: 400, batchSize: 1_000_000, seed: 8 });
    const events = h!.events! as Event[];
    const failures: { where: OutputFailure; code?: string }[] = [];
    const spool = await DiskSpool.open({ dir: d.dir, maxBytes: 64 << 20, fsync: 'interval' });
    // memoryBytes 0: every batch goes through the spool
    const out = new CollectorOutput({ host: h!.host!, sink, spool, memoryBytes: 0,
      onError: (err, where) => { failures.push({ where, code: (err as NodeJS.ErrnoException).code }); } });
    const STEP = 40;
    let i = 0;
    // 150 batches (≈ 280 KB) at once onto a 128 KiB disk: the writes run before replay can free anything
    for (let b = 0; b < 150; b++, i += STEP) out.push(events.slice(i, i + STEP));
    await out.flush();
    const lost = out.stats.droppedEvents;
    expect(out.stats.spoolWriteErrors).toBeGreaterThan(0);
    expect(lost).toBe(out.stats.spoolWriteErrors * STEP);
    expect(out.stats.spooledBatches).toBe(150 - out.stats.spoolWriteErrors);
    expect(failures.filter((f) => f.where === 'spool-write').map((f) => f.code)).toEqual(Array(out.stats.spoolWriteErrors).fill('ENOSPC'));
    expect(out.owedDropped).toBe(lost); // reported by the next batch that is stored
    // the agent keeps going: the rest in small steps, which the freed disk holds
    while (i < events.length) {
      for (let b = 0; b < 10 && i < events.length; b++, i += STEP) out.push(events.slice(i, i + STEP));
      await out.flush();
    }
    expect(out.stats.spoolWriteErrors * STEP).toBe(lost);
    expect(out.owedDropped).toBe(0);
    await out.close();
    await sink.close();
    // besides the lost writes, at most saving the read position failed while the disk was full (reported; the
    // records were sent, and in this process they are not sent again)
    for (const f of failures.filter((x) => x.where !== 'spool-write')) expect(f).toEqual({ where: 'spool-commit', code: 'ENOSPC' });

    const got = await readBatches(broker.bootstrap, topics.eventsTopic);
    expect(got.length).toBe(out.stats.batches);
    let next = 0, gaps = 0, reported = 0, received = 0;
    for (const x of got) {
      const first = Number(x.firstSeq ?? 0);
      expect(first).toBeGreaterThanOrEqual(next); // in order, nothing twice
      gaps += first - next;
      reported += Number(x.dropped ?? 0);
      received += x.events!.length;
      next = first + x.events!.length;
    }
    expect(out.seq).toBe(events.length);
    expect(received + lost).toBe(events.length); // nothing lost silently
    expect(gaps).toBe(lost); // the seq gap stays
    expect(reported).toBe(lost); // and `dropped` says so
    // nothing left on the disk but the spool's position
    const left = readdirSync(d.dir).filter((f) => statSync(join(d.dir, f)).size > 0 && f !== 'cursor');
    expect(left).toEqual([]);
  }, 180_000);
});

