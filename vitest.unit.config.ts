import { defineConfig } from 'vitest/config';

// `npm run test:unit`: the fast tier — the domain core, codecs, readers, reports, the simulator and the CLI's pure
// commands — with no broker, kernel lab, API server or chDB store. Under a minute here; `npm test` runs everything.
export default defineConfig({
  test: {
    include: [
      'test/correlator.test.ts', 'test/rules-v2.test.ts', 'test/correlator-order.test.ts', 'test/correlator-properties.test.ts',
      'test/wire.test.ts', 'test/native.test.ts', 'test/trace.test.ts', 'test/trace-roundtrip.test.ts', 'test/cli-analyze.test.ts',
      'test/cli-report.test.ts', 'test/simulator.test.ts', 'test/simulator-truth.test.ts', 'test/pipeline-encoder.test.ts',
      'test/pipeline-poison.test.ts', 'test/dashboards-generate.test.ts', 'test/dashboards-interpolate.test.ts',
      'test/trace-export.test.ts', 'test/report-html.test.ts',
      'test/compare-stats.test.ts', 'test/compare.test.ts', 'test/layering.test.ts', 'test/retry.test.ts', 'test/knowledge.test.ts', 'test/tracker-list.test.ts', 'test/mapping.test.ts',
      'test/fuzz-smoke.test.ts',
    ],
    testTimeout: 60_000,
    pool: 'forks',
    reporters: ['default'],
  },
});
