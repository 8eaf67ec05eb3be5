// Which event-model field of docs/rules.md (and of issue 14's vocabulary) each collector backend emits on a real
// kernel: the traces the collector wrote in the kernel lab (test/fixtures/kernel/<release>/trace-<backend>-<scenario>.jsonl,
// Debian 7.3 with DMABUFs and the lab importer, Debian 6.12 under the field conditions), read back field by field.
// The table below is the claim; the test fails when a trace shows more or less than it says.
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { batchFromJson } from '../services/trace/json.js';
import type { EventBatch } from '../services/core/model.js';
import { EMITTED, emittedFields, type Backend } from './kernel-lab/coverage.js';

const FIX = join(dirname(fileURLToPath(import.meta.url)), 'fixtures/kernel');
const traces = existsSync(FIX) ? readdirSync(FIX).flatMap((k) => readdirSync(join(FIX, k))
  .map((f) => /^trace-(ftrace|bpftrace)-(\w+)\.jsonl$/.exec(f)).filter((m): m is RegExpExecArray => !!m)
  .map((m) => ({ kernel: k, backend: m[1] as Backend, file: join(FIX, k, m[0]) }))) : [];

describe('event-model fields emitted by each backend on real kernels (kernel lab traces)', () => {
  const seen = new Map<string, Set<string>>();              // "<kernel> <backend>" -> fields
  for (const t of traces) seen.set(`${t.kernel} ${t.backend}`, emittedFields(readFileSync(t.file, 'utf8').split('\n').filter(Boolean)
    .map((l) => batchFromJson(JSON.parse(l)) as EventBatch)));

  it('has a lab trace of both backends on each kernel the table names', () => {
    const kernels = [...new Set(Object.values(EMITTED).flatMap((v) => v.kernels))].sort();
    expect(kernels).toEqual(['6.12', '7.3']);
    for (const k of kernels) for (const b of ['ftrace', 'bpftrace']) expect(seen.has(`${k} ${b}`), `trace-${b}-*.jsonl for ${k}`).toBe(true);
  });

  for (const [field, claim] of Object.entries(EMITTED)) {
    it(`${field}: ${claim.backends.length ? `${claim.backends.join(' + ')} on ${claim.kernels.join(', ')}` : 'no backend'}${claim.note ? ` (${claim.note})` : ''}`, () => {
      for (const [key, fields] of seen) {
        const [kernel, backend] = key.split(' ') as [string, Backend];
        const want = claim.backends.includes(backend) && claim.kernels.includes(kernel);
        expect(fields.has(field), `${field} from ${backend} on ${kernel}`).toBe(want);
      }
    });
  }
});
