// Property: any valid EventBatch survives .jsonl → read → .pb → read unchanged, and the snake_case
// spelling of the same proto3 JSON reads back to the same batches.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { Backing, Capability, TriggerKind, ZapTarget, type Event, type EventBatch } from '../services/core/model.js';
import { batchToJson, readTrace, writeTrace } from '../services/trace/index.js';

const dir = mkdtempSync(join(tmpdir(), 'revokescope-prop-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const u64 = fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 2 ** 32 }), fc.integer({ min: 2 ** 32, max: Number.MAX_SAFE_INTEGER }));
const u32 = fc.integer({ min: 0, max: 2 ** 32 - 1 });
const duration = fc.integer({ min: 0, max: 3_600e9 });
const bar = fc.integer({ min: 0, max: 5 });
const optBool = fc.option(fc.boolean(), { nil: undefined });
const enumOf = (e: object) => fc.constantFrom(...(Object.values(e) as number[]));
const noUndefined = <T extends object>(o: T): T => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;

const body: fc.Arbitrary<Partial<Event>> = fc.oneof(
  fc.record({ driver: fc.string(), zapBarsOnRevoke: fc.boolean(), dmabufBarMmap: fc.boolean() }).map((deviceInfo) => ({ deviceInfo })),
  fc.record({ waitNs: duration }).map((lockAcquire) => ({ lockAcquire })),
  fc.constant({ lockRelease: {} }),
  fc.record({ start: u64, length: u64, durationNs: duration, target: enumOf(ZapTarget), hadVmas: optBool })
    .map((zap) => ({ zap: noUndefined(zap) })),
  fc.record({ revoked: fc.boolean(), dmabufCount: u32, durationNs: duration, deviceHasVmas: optBool })
    .map((dmabufRevoke) => ({ dmabufRevoke: noUndefined(dmabufRevoke) })),
  fc.record({ dmabufId: u64, importerCount: u32, durationNs: duration }).map((moveNotify) => ({ moveNotify })),
  fc.record({ bar, backing: enumOf(Backing), mappingId: u64, length: u64, snapshot: fc.boolean() }).map((barMmap) => ({ barMmap })),
  fc.record({ bar, mappingId: u64 }).map((barMunmap) => ({ barMunmap })),
  fc.record({ bar, mappingId: u64, ok: fc.boolean() }).map((barFault) => ({ barFault })),
  fc.record({ kind: enumOf(TriggerKind), groupId: u64 }).map((trigger) => ({ trigger })),
);

const event: fc.Arbitrary<Event> = fc.tuple(
  fc.record({
    tsNs: fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }), cpu: u32, pid: u32, tid: u32, comm: fc.string(),
    device: fc.constantFrom('0000:3b:00.0', '0000:af:00.1', '10000:01:00.7'),
  }),
  body,
).map(([head, b]) => ({ ...head, ...b }));

const batch: fc.Arbitrary<EventBatch> = fc.record({
  host: fc.record({
    hostname: fc.string({ minLength: 1 }), bootId: fc.uuid(), kernelRelease: fc.string(), collectorVersion: fc.string(),
    capabilities: fc.array(enumOf(Capability), { maxLength: 4 }),
  }),
  firstSeq: u64, dropped: u64, events: fc.array(event, { maxLength: 8 }),
});

const snake = (k: string) => k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
function toSnake(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(toSnake);
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [snake(k), toSnake(x)]));
  return v;
}

async function readJson(file: string): Promise<{ batches: EventBatch[]; json: unknown[] }> {
  const batches: EventBatch[] = [];
  for await (const b of readTrace(file)) batches.push(b);
  return { batches, json: batches.map(batchToJson) };
}

describe('round trip property', () => {
  it('jsonl → pb → jsonl keeps every batch; snake_case reads the same', async () => {
    let run = 0;
    await fc.assert(fc.asyncProperty(fc.array(batch, { minLength: 1, maxLength: 5 }), async (batches) => {
      const n = run++;
      const expected = batches.map(batchToJson);
      const jsonl = join(dir, `p${n}.jsonl`);
      await writeTrace(jsonl, batches);
      const a = await readJson(jsonl);
      expect(a.json).toEqual(expected);
      const pb = join(dir, `p${n}.pb`);
      await writeTrace(pb, a.batches);
      expect((await readJson(pb)).json).toEqual(expected);
      const snakeFile = join(dir, `p${n}-snake.jsonl`);
      writeFileSync(snakeFile, readFileSync(jsonl, 'utf8').trimEnd().split('\n').map((l) => JSON.stringify(toSnake(JSON.parse(l)))).join('\n'));
      expect((await readJson(snakeFile)).json).toEqual(expected);
    }), { numRuns: 150 });
  });
});

describe('canonical JSON keeps values that only look like defaults', () => {
  it('a hostname "0" and a comm ending in _UNSPECIFIED survive; 64-bit zeros and UNSPECIFIED enums are omitted', async () => {
    const { batchToJson } = await import('../services/trace/json.js');
    const json = batchToJson({ host: { hostname: '0', bootId: 'b' }, firstSeq: 0, dropped: 0, events: [
      { tsNs: 5, device: '0000:00:01.0', comm: 'X_UNSPECIFIED', zap: { start: 0, length: 0, durationNs: 0, target: 0, hadVmas: false } }] });
    expect(json).toEqual({ host: { hostname: '0', bootId: 'b' }, events: [
      { tsNs: '5', device: '0000:00:01.0', comm: 'X_UNSPECIFIED', zap: { hadVmas: false } }] });
  });
});
