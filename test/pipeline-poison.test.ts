// Issue 16, "one bad message must not stop a partition": the wire reader is the one reader of every path, so
// analyze and the pipeline (both modes run the same stage) accept and reject the same bytes with the same result;
// anything a message provokes while it is handled is a dead letter with its reason, and the partition goes on.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { simulate } from '../collectors/simulator/index.js';
import { run as analyze } from '../services/cli/commands/analyze.js';
import { Correlator } from '../services/core/correlator/index.js';
import { v1, type Episode, type EventBatch, type Finding } from '../services/core/model.js';
import { validateBatch } from '../services/core/validate.js';
import { HostHealthTracker } from '../services/pipeline/health.js';
import { PartitionStage } from '../services/pipeline/stage.js';
import type { TransportMessage } from '../services/transport/types.js';
import { poisonBatch } from './support/poison.js';

const dir = mkdtempSync(join(tmpdir(), 'revokescope-poison-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const encode = (b: EventBatch) => v1.EventBatch.encode(b).finish();
const messagesOf = (frames: Uint8Array[], key = (f: Uint8Array) => { try { return v1.EventBatch.decode(f).host?.hostname ?? ''; } catch { return ''; } }) =>
  frames.map((value, i): TransportMessage => ({ key: key(value), value, offset: String(i), partition: 0 }));

/** What the pipeline stage makes of messages: dead letters by offset, and the correlator's outputs. */
function throughStage(messages: TransportMessage[], correlator = new Correlator()) {
  const st = new PartitionStage(0, 0, 0, correlator, new HostHealthTracker());
  const deadLetters: { offset: number; reason: string }[] = [];
  const episodes: Episode[] = [], findings: Finding[] = [];
  for (const m of messages) {
    const r = st.handle(m);
    if (r.deadLetter) deadLetters.push({ offset: Number(m.offset), reason: r.deadLetter.text });
    episodes.push(...correlator.takeEpisodes()); findings.push(...correlator.takeFindings());
  }
  correlator.finish();
  episodes.push(...correlator.takeEpisodes()); findings.push(...correlator.takeFindings());
  return { deadLetters, episodes, findings, next: st.next };
}

class Capture extends Writable {
  text = '';
  override _write(chunk: Buffer, _e: string, cb: () => void): void { this.text += chunk.toString(); cb(); }
}

/** What `analyze --lenient` makes of the same frames in a .pb file: skipped records and the JSON output. */
async function throughAnalyze(frames: Uint8Array[], name: string) {
  const parts: Uint8Array[] = [];
  for (const f of frames) parts.push(Uint8Array.from(lengthPrefix(f.length)), f);
  const file = join(dir, `${name}.pb`);
  writeFileSync(file, Buffer.concat(parts));
  const stdout = new Capture(), stderr = new Capture();
  const code = await analyze([file, '--format', 'json', '--lenient'], { stdout, stderr });
  const j = JSON.parse(stdout.text) as { episodes: { episodeId: string }[]; findings: { findingId: string }[]; summary: { input: { skippedInput: number } } };
  return { code, skipped: j.summary.input.skippedInput, episodes: j.episodes.map((e) => e.episodeId).sort(),
    findings: j.findings.map((f) => f.findingId).sort(), stderr: stderr.text };
}

function lengthPrefix(n: number): number[] {
  const out: number[] = [];
  while (n > 127) { out.push((n & 127) | 128); n >>>= 7; }
  out.push(n);
  return out;
}

describe('a poison message', () => {
  it('protobufjs and validateBatch accept it; the wire reader rejects it with the field and wire type', () => {
    const poison = poisonBatch();
    expect(poison.length).toBe(35);
    expect(() => validateBatch(v1.EventBatch.decode(poison))).not.toThrow();
    const r = throughStage(messagesOf([poison]));
    expect(r.deadLetters).toEqual([{ offset: 0, reason: expect.stringMatching(/^invalid batch: events\[0\]\.barFault\.bar: wire type 5/) }]);
  });

  it('is dead-lettered and the partition goes on: the rest gives what analyze of the rest gives', () => {
    const { batches } = simulate({ hosts: 3, durationNs: 15e9, seed: 8 });
    const frames = batches.map(encode);
    const host = batches[3]!.host!.hostname!;
    const withPoison = [...frames.slice(0, 4), poisonBatch(host), ...frames.slice(4)];
    const r = throughStage(messagesOf(withPoison));
    expect(r.deadLetters.map((d) => d.offset)).toEqual([4]);
    expect(r.next).toBe(withPoison.length);
    const clean = throughStage(messagesOf(frames));
    expect(r.episodes).toEqual(clean.episodes);
    expect(r.findings).toEqual(clean.findings);
  });

  it('a defect of ours while handling one message (a throw the input cannot provoke today) is a dead letter, not a stall', () => {
    const { batches } = simulate({ hosts: 2, durationNs: 10e9, seed: 2 });
    const frames = batches.map(encode);
    const correlator = new Correlator();
    const real = correlator.ingestScan.bind(correlator);
    let calls = 0;
    correlator.ingestScan = (scan) => { if (++calls === 3) throw new TypeError('a defect'); real(scan); };
    const r = throughStage(messagesOf(frames), correlator);
    expect(r.deadLetters).toEqual([{ offset: 2, reason: expect.stringMatching(/^internal error: TypeError: a defect/) }]);
    expect(r.next).toBe(frames.length);
  });
});

describe('analyze and the pipeline stage agree on mutated batches (differential fuzz)', () => {
  const { batches } = simulate({ hosts: 2, durationNs: 8e9, seed: 12 });
  const frames = batches.map(encode);

  /** A mutation of one frame: a byte changed, bytes cut, bytes inserted, or a tag's wire type changed. */
  const mutation = fc.record({
    frame: fc.nat({ max: frames.length - 1 }),
    kind: fc.constantFrom('flip', 'cut', 'insert', 'wiretype'),
    at: fc.nat(), value: fc.nat({ max: 255 }), len: fc.integer({ min: 1, max: 8 }),
  });

  function mutate(src: Uint8Array[], muts: { frame: number; kind: string; at: number; value: number; len: number }[]): Uint8Array[] {
    const out = src.map((f) => Uint8Array.from(f));
    for (const m of muts) {
      const f = out[m.frame]!;
      const at = m.at % Math.max(1, f.length);
      if (m.kind === 'flip') f[at] = m.value;
      else if (m.kind === 'wiretype') f[at] = (f[at]! & ~7) | (m.value % 6);
      else if (m.kind === 'cut') out[m.frame] = Uint8Array.from([...f.subarray(0, at), ...f.subarray(Math.min(f.length, at + m.len))]);
      else out[m.frame] = Uint8Array.from([...f.subarray(0, at), ...Array(m.len).fill(m.value), ...f.subarray(at)]);
    }
    return out;
  }

  it('the same messages accepted and rejected, the same episodes and findings', async () => {
    let run = 0, rejectedTotal = 0;
    await fc.assert(fc.asyncProperty(fc.array(mutation, { minLength: 1, maxLength: 4 }), async (muts) => {
      const mutated = mutate(frames, muts);
      // the key is the host the producer meant (the unmutated frame's), as a collector would send it
      const keys = frames.map((f) => v1.EventBatch.decode(f).host!.hostname!);
      const stage = throughStage(mutated.map((value, i) => ({ key: keys[i]!, value, offset: String(i), partition: 0 })));
      const a = await throughAnalyze(mutated, `fuzz-${run++}`);
      // analyze does not check message keys: a batch whose hostname was mutated is a dead letter only in the pipeline
      const keyed = stage.deadLetters.filter((d) => !/message key/.test(d.reason));
      expect(a.skipped).toBe(keyed.length);
      rejectedTotal += keyed.length;
      if (keyed.length === stage.deadLetters.length) {
        expect(stage.episodes.map((e) => e.episodeId).sort()).toEqual(a.episodes);
        expect(stage.findings.map((f) => f.findingId).sort()).toEqual(a.findings);
      }
    }), { numRuns: 60 });
    expect(rejectedTotal).toBeGreaterThan(20); // the mutations do reach the reader's rejections
  }, 120_000);
});
