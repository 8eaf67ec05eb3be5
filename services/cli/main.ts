#!/usr/bin/env node
// revokescope CLI: dispatches `revokescope <command> ...` to services/cli/commands/<command>.ts.
// Exit codes: 0 ok, 1 a --fail-on threshold was met (compare: a significant regression), 2 usage or input error, 3 internal error.
const commands: Record<string, { summary: string; load: () => Promise<{ run(argv: string[]): Promise<number> }> }> = {
  run: { summary: 'embedded pipeline: simulator or trace → correlator → ClickHouse (chDB) → API', load: () => import('./commands/run.js') },
  analyze: { summary: 'correlate a trace file into episodes and findings', load: () => import('./commands/analyze.js') },
  simulate: { summary: 'generate a simulated fleet trace with its ground truth', load: () => import('./commands/simulate.js') },
  collect: { summary: 'trace this host\'s kernel (ftrace or bpftrace) into EventBatches', load: () => import('./commands/collect.js') },
  lab: { summary: 'boot a kernel under QEMU with the standard vfio workload, collect and analyze it', load: () => import('./commands/lab.js') },
  correlate: { summary: 'fleet correlator: consume Kafka, write ClickHouse', load: () => import('./commands/correlate.js') },
  serve: { summary: 'serve the API from an existing store', load: () => import('./commands/serve.js') },
  'export-trace': { summary: 'a time range of the store as Chrome JSON trace events (ui.perfetto.dev)', load: () => import('./commands/export-trace.js') },
  explain: { summary: 'one finding explained: its timeline, the state the rule judged, what to check next', load: () => import('./commands/explain.js') },
  report: { summary: 'a trace as one self-contained HTML report (histograms, finding timelines, episodes)', load: () => import('./commands/report.js') },
  compare: { summary: 'kernel A/B: latency quantiles and finding rates of a candidate kernel against a baseline', load: () => import('./commands/compare.js') },
};

function usage(): string {
  const width = Math.max(...Object.keys(commands).map((c) => c.length));
  return ['usage: revokescope <command> [options]   (revokescope <command> --help)', '', 'commands:',
    ...Object.entries(commands).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`)].join('\n');
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    console.log(usage());
    return name ? 0 : 2;
  }
  const command = commands[name];
  if (!command) {
    console.error(`revokescope: unknown command '${name}'\n${usage()}`);
    return 2;
  }
  return (await command.load()).run(rest);
}

main(process.argv.slice(2)).then(
  (code) => { process.exitCode = code; },
  (err: unknown) => {
    console.error(`revokescope: ${err instanceof Error ? err.message : String(err)}`);
    if (process.env.REVOKESCOPE_DEBUG && err instanceof Error) console.error(err.stack);
    process.exitCode = 3;
  },
);
