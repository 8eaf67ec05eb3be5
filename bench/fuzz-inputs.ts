// The fuzz corpus of `npm run fuzz` (bench/fuzz.ts): seed inputs of every format revokescope reads — protobuf
// EventBatch frames and .pb files, .jsonl lines, ftrace trace_pipe text and bpftrace output (raw captures) — and
// input number i of a run as a deterministic mutation of them (seeded by the run's seed and i), so any input a run
// reports can be made again from its number alone.
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { simulate } from '../collectors/simulator/index.js';
import { Rng } from '../collectors/simulator/rng.js';
import { v1 } from '../services/core/model.js';
import { batchToJson } from '../services/trace/json.js';

/** 'pb': mutated frames, framed correctly into a .pb file (every path reads the same frames); 'pb-file': the .pb file's
 * bytes mutated, length prefixes included (analyze's reader only); 'jsonl', 'ftrace', 'bpftrace': text. */
export type FuzzKind = 'pb' | 'pb-file' | 'jsonl' | 'ftrace' | 'bpftrace';
export const KINDS: FuzzKind[] = ['pb', 'pb-file', 'jsonl', 'ftrace', 'bpftrace'];

export interface FuzzInput {
  index: number;
  kind: FuzzKind;
  /** What was done to the seed, for the report. */
  mutation: string;
  /** The file's bytes (.pb with length prefixes, .jsonl, or a raw capture's text). */
  bytes: Uint8Array;
  /** 'pb': the frames the file holds, as a transport would deliver them. */
  frames?: Uint8Array[];
}

export function lengthPrefixed(frames: Uint8Array[]): Uint8Array {
  const parts: Uint8Array[] = [];
  for (const f of frames) {
    const prefix: number[] = [];
    let n = f.length;
    while (n > 127) { prefix.push((n & 127) | 128); n >>>= 7; }
    prefix.push(n);
    parts.push(Uint8Array.from(prefix), f);
  }
  return Buffer.concat(parts);
}

interface RawSeed { header: string; body: string[] }

export class FuzzCorpus {
  private constructor(
    readonly frames: Uint8Array[],
    readonly jsonLines: string[],
    readonly ftrace: RawSeed[],
    readonly bpftrace: RawSeed[],
  ) {}

  /** Seeds: a small simulated fleet (every era, so every body kind) as frames and JSON lines, the v1 fixture's JSON
   * lines, and the kernel lab's raw captures (test/fixtures/kernel). */
  static load(root: string): FuzzCorpus {
    const { batches } = simulate({ hosts: 4, durationNs: 6e9, seed: 16 });
    // small batches: a mutation hits a larger share of each, and every input stays cheap
    const small = batches.flatMap((b) => {
      const out = [];
      for (let i = 0; i < (b.events?.length ?? 0) || i === 0; i += 12) {
        out.push({ ...b, firstSeq: Number(b.firstSeq ?? 0) + i, events: (b.events ?? []).slice(i, i + 12) });
      }
      return out;
    });
    const frames = small.map((b) => v1.EventBatch.encode(b).finish());
    const jsonLines = [
      ...small.slice(0, 400).map((b) => JSON.stringify(batchToJson(b))),
      ...readFileSync(join(root, 'test/fixtures/v1/v1-correct.jsonl'), 'utf8').split('\n').filter(Boolean),
    ];
    const raws: { ftrace: RawSeed[]; bpftrace: RawSeed[] } = { ftrace: [], bpftrace: [] };
    const kernelDir = join(root, 'test/fixtures/kernel');
    for (const k of readdirSync(kernelDir)) {
      for (const f of readdirSync(join(kernelDir, k))) {
        const m = /^raw-(ftrace|bpftrace)/.exec(f);
        if (!m) continue;
        const [header, ...body] = readFileSync(join(kernelDir, k, f), 'utf8').split('\n');
        raws[m[1] as 'ftrace' | 'bpftrace'].push({ header: header!, body });
      }
    }
    if (raws.ftrace.length === 0 || raws.bpftrace.length === 0) throw new Error(`no raw captures under ${kernelDir}`);
    return new FuzzCorpus(frames, jsonLines, raws.ftrace, raws.bpftrace);
  }

  /** Input `index` of the run with `seed`. */
  input(seed: number, index: number): FuzzInput {
    const r = new Rng(seed, index);
    const kind = KINDS[index % KINDS.length]!;
    if (kind === 'pb' || kind === 'pb-file') {
      const n = r.int(1, 5);
      const at = r.int(0, this.frames.length - n);
      const window: Uint8Array[] = this.frames.slice(at, at + n).map((f) => Uint8Array.from(f));
      if (kind === 'pb') {
        const muts: string[] = [];
        for (let k = r.int(1, 3); k > 0; k--) {
          const i = r.int(0, window.length - 1);
          const { bytes, what } = mutateProtobuf(r, window[i]!, this.frames);
          window[i] = bytes;
          muts.push(`frame ${i}: ${what}`);
        }
        return { index, kind, mutation: muts.join('; '), bytes: lengthPrefixed(window), frames: window };
      }
      const { bytes, what } = mutateBytes(r, lengthPrefixed(window));
      return { index, kind, mutation: what, bytes };
    }
    if (kind === 'jsonl') {
      const n = r.int(1, 4);
      const at = r.int(0, this.jsonLines.length - n);
      const lines = this.jsonLines.slice(at, at + n);
      const i = r.int(0, lines.length - 1);
      const { text, what } = r.float() < 0.5 ? mutateJson(r, lines[i]!) : mutateText(r, lines[i]!);
      lines[i] = text;
      return { index, kind, mutation: `line ${i}: ${what}`, bytes: Buffer.from(lines.join('\n') + '\n') };
    }
    const seeds = kind === 'ftrace' ? this.ftrace : this.bpftrace;
    const s = seeds[r.int(0, seeds.length - 1)]!;
    const n = r.int(5, 120);
    const at = r.int(0, Math.max(0, s.body.length - n));
    const lines = [s.header, ...s.body.slice(at, at + n)];
    const muts: string[] = [];
    for (let k = r.int(1, 4); k > 0; k--) muts.push(mutateLines(r, lines));
    return { index, kind, mutation: muts.join('; '), bytes: Buffer.from(lines.join('\n')) };
  }
}

// ---- mutations ----

const NASTY_NUMBERS = ['0', '-1', '18446744073709551615', '18446744073709551616', '9007199254740993', '99999999999999999999999',
  '1e308', '-1e308', '4294967296', '2147483648', '-2147483649', '0x', '0xffffffffffffffffff', 'NaN', '1.5', '00000000000000000001'];

/** Byte-level damage: flip, cut, insert, duplicate, overwrite with 0xff, truncate. */
function mutateBytes(r: Rng, src: Uint8Array): { bytes: Uint8Array; what: string } {
  const b = Uint8Array.from(src);
  const at = r.int(0, Math.max(0, b.length - 1));
  const len = r.int(1, 16);
  switch (r.int(0, 5)) {
    case 0: b[at] = r.int(0, 255); return { bytes: b, what: `byte ${at} = ${b[at]}` };
    case 1: return { bytes: Buffer.concat([b.subarray(0, at), b.subarray(Math.min(b.length, at + len))]), what: `cut ${len} at ${at}` };
    case 2: {
      const ins = Uint8Array.from({ length: len }, () => r.int(0, 255));
      return { bytes: Buffer.concat([b.subarray(0, at), ins, b.subarray(at)]), what: `insert ${len} random at ${at}` };
    }
    case 3: return { bytes: Buffer.concat([b.subarray(0, at + len), b.subarray(at)]), what: `duplicate ${len} at ${at}` };
    case 4: b.fill(0xff, at, at + len); return { bytes: b, what: `0xff × ${len} at ${at}` };
    default: return { bytes: b.subarray(0, at), what: `truncate at ${at}` };
  }
}

/** Protobuf-aware damage on one frame: a tag's wire type or field number changed, a 10-byte varint, a length
 * changed, a splice from another frame, random bytes, an empty frame; else byte-level damage. */
function mutateProtobuf(r: Rng, src: Uint8Array, others: Uint8Array[]): { bytes: Uint8Array; what: string } {
  const b = Uint8Array.from(src);
  const at = r.int(0, Math.max(0, b.length - 1));
  switch (r.int(0, 9)) {
    case 0: case 1: b[at] = (b[at]! & ~7) | r.int(0, 7); return { bytes: b, what: `wire type of byte ${at} = ${b[at]! & 7}` };
    case 2: b[at] = (b[at]! & 7) | (r.int(1, 15) << 3); return { bytes: b, what: `field number of byte ${at} = ${b[at]! >> 3}` };
    case 3: {
      const v = Uint8Array.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
      return { bytes: Buffer.concat([b.subarray(0, at), v, b.subarray(at + 1)]), what: `10-byte varint at ${at}` };
    }
    case 4: b[at] = r.int(0, 0x7f); return { bytes: b, what: `byte ${at} = ${b[at]} (a length?)` };
    case 5: {
      const o = others[r.int(0, others.length - 1)]!;
      const from = r.int(0, o.length - 1);
      return { bytes: Buffer.concat([b.subarray(0, at), o.subarray(from, from + r.int(1, 64))]), what: `splice at ${at} from another frame` };
    }
    case 6: return { bytes: Uint8Array.from({ length: r.int(0, 64) }, () => r.int(0, 255)), what: 'random bytes' };
    case 7: if (r.float() < 0.3) return { bytes: new Uint8Array(0), what: 'empty' }; return mutateBytes(r, b);
    default: return mutateBytes(r, b);
  }
}

/** Text damage: a character changed, a range cut or duplicated, a control or multi-byte character inserted, a very
 * long run inserted. */
function mutateText(r: Rng, s: string): { text: string; what: string } {
  const at = r.int(0, Math.max(0, s.length - 1));
  const len = r.int(1, 24);
  switch (r.int(0, 5)) {
    case 0: return { text: s.slice(0, at) + String.fromCharCode(r.int(0, 127)) + s.slice(at + 1), what: `char ${at}` };
    case 1: return { text: s.slice(0, at) + s.slice(at + len), what: `cut ${len} at ${at}` };
    case 2: return { text: s.slice(0, at + len) + s.slice(at), what: `duplicate ${len} at ${at}` };
    case 3: return { text: s.slice(0, at) + ['\u0000', '\uFFFD', '\uD800', '"', '\\', '{', ']', '\r'][r.int(0, 7)] + s.slice(at), what: `odd char at ${at}` };
    case 4: return { text: s.slice(0, at) + '9'.repeat(r.int(20, 5000)) + s.slice(at), what: `long digit run at ${at}` };
    default: return { text: s.slice(0, at), what: `truncate at ${at}` };
  }
}

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
const NASTY_VALUES: Json[] = [null, true, -1, 0, 1.5, 1e308, -0, '', 'x'.repeat(2000), '18446744073709551616', '-5', '0x10', 'NaN',
  'Infinity', [], {}, [1, 2], { a: 1 }, '0000:zz:00.0', 'UNKNOWN_ENUM_NAME', '2026-02-30T00:00:00Z', 4294967296, '9007199254740993'];

/** Structure-aware JSON damage: a value somewhere replaced with a nasty one, a key deleted, an unknown key added, a
 * deep nesting, an array element repeated. */
function mutateJson(r: Rng, line: string): { text: string; what: string } {
  let root: Json;
  try { root = JSON.parse(line) as Json; } catch { return mutateText(r, line); }
  // collect containers and their keys
  const slots: { parent: Json[] | { [k: string]: Json }; key: string | number; path: string }[] = [];
  const walk = (v: Json, path: string, depth: number) => {
    if (depth > 8 || slots.length > 400) return;
    if (Array.isArray(v)) v.forEach((x, i) => { slots.push({ parent: v, key: i, path: `${path}[${i}]` }); walk(x, `${path}[${i}]`, depth + 1); });
    else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) { slots.push({ parent: v, key: k, path: `${path}.${k}` }); walk(x, `${path}.${k}`, depth + 1); }
  };
  walk(root, '', 0);
  if (slots.length === 0) return mutateText(r, line);
  const s = slots[r.int(0, slots.length - 1)]!;
  const set = (v: Json) => { (s.parent as Record<string | number, Json>)[s.key] = v; };
  let what: string;
  switch (r.int(0, 5)) {
    case 0: case 1: {
      const v = NASTY_VALUES[r.int(0, NASTY_VALUES.length - 1)]!;
      set(v); what = `${s.path} = ${JSON.stringify(v).slice(0, 40)}`; break;
    }
    case 2: {
      if (Array.isArray(s.parent)) s.parent.splice(s.key as number, 1); else delete s.parent[s.key as string];
      what = `delete ${s.path}`; break;
    }
    case 3: {
      const depth = r.int(10, 3000);
      set(JSON.parse('['.repeat(depth) + '1' + ']'.repeat(depth)) as Json); what = `${s.path} = nesting ${depth} deep`; break;
    }
    case 4: {
      if (Array.isArray(s.parent)) { const x = s.parent[s.key as number]!; for (let k = r.int(1, 200); k > 0; k--) s.parent.push(x); what = `repeat ${s.path}`; }
      else { s.parent[`unknown${r.int(0, 9)}`] = 1; what = `unknown key beside ${s.path}`; }
      break;
    }
    default: {
      const num = NASTY_NUMBERS[r.int(0, NASTY_NUMBERS.length - 1)]!;
      const text = JSON.stringify(root).replace(/"(\d+)"|(?<=:)(\d+)/, () => `"${num}"`);
      return { text, what: `first number = "${num}"` };
    }
  }
  return { text: JSON.stringify(root), what };
}

/** Damage to a raw capture (header = line 0): a line dropped, repeated, swapped, cut, corrupted; a number token
 * replaced with a nasty one; a garbage or very long line; the header damaged. */
function mutateLines(r: Rng, lines: string[]): string {
  const i = r.int(lines.length > 1 ? 1 : 0, lines.length - 1);
  const line = lines[i] ?? '';
  switch (r.int(0, 8)) {
    case 0: lines.splice(i, 1); return `drop line ${i}`;
    case 1: lines.splice(i, 0, line); return `repeat line ${i}`;
    case 2: { const j = r.int(1, Math.max(1, lines.length - 1)); [lines[i], lines[j]] = [lines[j] ?? '', line]; return `swap lines ${i} ${j}`; }
    case 3: case 4: {
      const tokens = [...line.matchAll(/0x[0-9a-f]+|\d+(\.\d+)?/g)];
      if (tokens.length === 0) { lines[i] = mutateText(r, line).text; return `line ${i}: text`; }
      const t = tokens[r.int(0, tokens.length - 1)]!;
      const num = NASTY_NUMBERS[r.int(0, NASTY_NUMBERS.length - 1)]!;
      lines[i] = line.slice(0, t.index) + num + line.slice(t.index! + t[0].length);
      return `line ${i}: number ${t[0]} → ${num}`;
    }
    case 5: { const m = mutateText(r, line); lines[i] = m.text; return `line ${i}: ${m.what}`; }
    case 6: lines.splice(i, 0, ['RS', 'RS lock', ' ', '\u0000'.repeat(10), 'x'.repeat(r.int(1000, 20000)), '# deviceinfo', 'Lost 5 events',
      `CPU:${r.int(0, 9)} [LOST ${r.int(0, 1e6)} EVENTS]`, 'RS_READY x'][r.int(0, 8)]!); return `garbage line at ${i}`;
    case 7: { const m = mutateText(r, lines[0] ?? ''); lines[0] = m.text; return `header: ${m.what}`; }
    default: lines[i] = line.slice(0, r.int(0, line.length)); return `line ${i} truncated`;
  }
}
