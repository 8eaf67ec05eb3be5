// The fuzz harness's checks (bench/fuzz-check.ts: every reader of a format against the others) on the first inputs of
// two seeds, in the suite. `npm run fuzz` runs 100,000 inputs by hand; these hold the ones it has found crashes with
// (seed 1, inputs 423, 1933 and 3839: ftrace and bpftrace text with a tid of 2^32, whose events the reorder buffer
// once handed to the rules with the next body kind's field number).
import { describe, expect, it } from 'vitest';
import { checkInput } from '../bench/fuzz-check.js';
import { FuzzCorpus } from '../bench/fuzz-inputs.js';

describe('fuzz inputs, every format through every reader', () => {
  const corpus = FuzzCorpus.load(process.cwd());
  for (const [seed, inputs] of [[1, 4000], [3, 1000]] as const) {
    it(`seed ${seed}, inputs 0 – ${inputs - 1}: no crash, no disagreement between readers`, async () => {
      const bad: unknown[] = [];
      for (let i = 0; i < inputs; i++) {
        const input = corpus.input(seed, i);
        const r = await checkInput(input);
        if (r.crash || r.disagreement) bad.push({ index: i, kind: input.kind, mutation: input.mutation, crash: r.crash, disagreement: r.disagreement });
      }
      expect(bad).toEqual([]);
    }, 180_000);
  }
});
