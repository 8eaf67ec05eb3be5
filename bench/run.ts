// `npm run bench [-- NAME ...]`: runs the benchmarks (all by default) one after another on this machine and prints
// JSON per benchmark plus the machine line for BENCHMARKS.md. Needs `node --expose-gc` (the npm script passes it).
import { cpus, totalmem } from 'node:os';

type Bench = () => Promise<unknown>;

const benches: Record<string, { about: string; load: () => Promise<Bench> }> = {
  correlator: { about: 'correlator throughput (pre-decoded, from bytes, decode-only) and bytes per idle device',
    load: async () => (await import('./correlator.js')).benchCorrelator },
  reorder: { about: 'reordering one batch of 80,000 events by arrival order (ascending, descending, runs, shuffled)',
    load: async () => (await import('./correlator.js')).benchReorder },
  'sql-episodes': { about: 'the episode computation as ClickHouse SQL in chDB vs the correlator',
    load: async () => (await import('./sql-episodes.js')).benchSqlEpisodes },
  decode: { about: 'decode-only throughput: protobufjs vs @bufbuild/protobuf, trace readers',
    load: async () => (await import('./decode.js')).benchDecode },
  simulator: { about: 'simulator generation speed', load: async () => (await import('./simulator.js')).benchSimulator },
  pipeline: { about: 'embedded end-to-end: simulator → bus → correlator → chDB', load: async () => (await import('./pipeline.js')).benchPipeline },
  store: { about: 'engine CPU per raw event and per episode written to a fresh chDB store', load: async () => (await import('./store.js')).benchStore },
  kafka: { about: 'end-to-end through a real Kafka broker; kafkajs vs @platformatic/kafka', load: async () => (await import('./kafka.js')).benchKafka },
  'kernel-overhead': { about: 'kernel lab: cost of the global probes per host call (truncate and mmap storms, Debian 6.12 and 7.3, QEMU/TCG guest)',
    load: async () => async () => { const { runKernelOverhead } = await import('./kernel-overhead.js'); return ['6.12', '7.3'].map((kernel) => runKernelOverhead({ kernel })); } },
  api: { about: 'API latency under load with 10 M episodes stored', load: async () => (await import('./api.js')).benchApi },
  compare: { about: 'revokescope compare on simulated fleets: false positives on identical fleets, ×1.2 revoke latency found',
    load: async () => (await import('./compare.js')).benchCompare },
};

async function main(argv: string[]): Promise<number> {
  if (argv.includes('--help')) {
    console.log(`usage: npm run bench [-- NAME ...]\n\n${Object.entries(benches).map(([n, b]) => `  ${n.padEnd(13)} ${b.about}`).join('\n')}`);
    return 0;
  }
  const names = argv.length > 0 ? argv : Object.keys(benches);
  const unknown = names.filter((n) => !benches[n]);
  if (unknown.length > 0) { console.error(`bench: unknown benchmark ${unknown.join(', ')}`); return 2; }
  console.log(`machine: ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, ${Math.round(totalmem() / 2 ** 30)} GiB, node ${process.version}`);
  let failed = 0;
  for (const name of names) {
    const t0 = Date.now();
    try {
      const result = await (await benches[name]!.load())();
      console.log(`\n## ${name} (${((Date.now() - t0) / 1000).toFixed(1)} s)\n${JSON.stringify(result, null, 2)}`);
    } catch (err) {
      failed++;
      console.error(`\n## ${name}: FAILED: ${err instanceof Error ? err.stack ?? err.message : String(err)}`);
    }
  }
  return failed > 0 ? 1 : 0;
}

main(process.argv.slice(2)).then((code) => { process.exitCode = code; });
