// `revokescope run` (what `npm start` runs): the embedded pipeline in one process, no servers.
// source (simulator | --input FILE) → EventBatch protobuf → in-process bus → pipeline (wire reader, correlator) →
// ClickHouse (chDB in --data-dir, or --clickhouse-url) → API on 127.0.0.1:--port.
import { hostname } from 'node:os';
import type { FastifyInstance } from 'fastify';
import { apiStartLines, buildApi, listen } from '../../api/server.js';
import { runEmbedded } from '../../pipeline/embedded.js';
import { feed } from '../../pipeline/feed.js';
import { runFleet } from '../../pipeline/fleet.js';
import type { PipelineStats } from '../../pipeline/pipeline.js';
import { simulatorSource, toAsyncIterable, traceSource } from '../../pipeline/sources.js';
import { storeSummary } from '../../pipeline/summary.js';
import { openLockSummaries, renderTable } from '../../report/index.js';
import { openStore, renderSchema, defaultSchemaOptions, type OpenStore } from '../../store/index.js';
import { ConsumerBookkeeping } from '../../transport/kafka/bookkeeping.js';
import type { KafkaSettings } from '../../transport/kafka/config.js';
import { createKafkaSink } from '../../transport/kafka/producer.js';
import { createLogger, type Logger } from '../logger.js';
import { duration, helpText, integer, parseCommand, text, UsageError, type OptionTable } from '../options.js';
import { onSignals, progressLine, waitForSignal } from '../process.js';
import {
  alertingSettings, apiOptions, kafkaOptions, kafkaSettingsOf, logOptions, securitySettings, storeOptions, storeSettings,
} from '../settings.js';

const sourceOptions = {
  hosts: { flag: 'hosts', arg: 'N', default: 50, parse: integer(1, 100_000), help: 'simulated hosts' },
  duration: { flag: 'duration', arg: 'DURATION', default: 60e9, parse: duration({ min: 1, max: 30 * 86_400e9 }),
    help: 'simulated time per host: 60s, 500ms, 2m (a bare number is seconds)' },
  seed: { flag: 'seed', arg: 'N', default: 1, parse: integer(0, 2 ** 32 - 1), help: 'simulator seed' },
  input: { flag: 'input', arg: 'FILE', parse: text, help: 'read a trace instead (.jsonl, .pb, - for stdin)' },
} satisfies OptionTable;

const runOptions = {
  kafkaVia: { flag: 'kafka', env: 'REVOKESCOPE_KAFKA_BROKERS', arg: 'BROKERS', parse: kafkaOptions.brokers.parse,
    help: 'go through Kafka instead of the in-process bus: the source is produced to revokescope.events, then the fleet pipeline drains it into the store' },
  printSchema: { flag: 'print-schema', boolean: true, help: 'print the DDL of every table (honours --cluster and --clickhouse-database) and exit' },
  serve: { flag: 'serve', boolean: true, help: 'keep serving the API after the source ends, until Ctrl-C' },
  noApi: { flag: 'no-api', boolean: true, help: 'do not start the API' },
} satisfies OptionTable;

const { brokers: _brokers, ...kafkaNames } = kafkaOptions;
const runApiOptions = { ...apiOptions };

const HELP = helpText('revokescope run [options]', `
Runs the embedded pipeline: a simulated fleet (default) or a trace file → correlator → ClickHouse (chDB in
--data-dir, no server) → API on 127.0.0.1 (/api/v1/*, /api/v2/* (Alertmanager v2), /healthz, /readyz, /metrics,
/openapi.json, /docs). Ctrl-C stops the source, writes what was read, exits 0.`,
[['source', sourceOptions], ['run', runOptions], ['api', runApiOptions], ['store', storeOptions], ['kafka (with --kafka)', kafkaNames],
  ['logging', logOptions]]);

const ALL = { ...sourceOptions, ...runOptions, ...runApiOptions, ...storeOptions, ...kafkaNames, ...logOptions };

export async function run(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  let o;
  let store;
  try {
    o = parseCommand(argv, ALL, env);
    if (o.help) { console.log(HELP); return 0; }
    store = storeSettings(o.values, { printSchemaOnly: o.values.printSchema });
  } catch (err) {
    if (err instanceof UsageError) { console.error(`revokescope run: ${err.message}`); return 2; }
    throw err;
  }
  const v = o.values;
  if (v.printSchema) {
    process.stdout.write(renderSchema({ ...defaultSchemaOptions, ...store.schema }));
    return 0;
  }
  const log = createLogger('run', v.logLevel);
  const kafka = v.kafkaVia ? kafkaSettingsOf({ ...v, brokers: v.kafkaVia }, true) : undefined;
  const controller = new AbortController();
  const signals = onSignals(() => controller.abort());
  let opened: OpenStore | undefined;
  let api: FastifyInstance | undefined;
  try {
    opened = await openStore(store.connect, {
      schema: store.schema,
      // a simulated fleet runs faster than real time: anchor its window so it ends about now
      wallClockShiftNs: v.input ? 0 : -v.duration,
    });
    let url: string | undefined;
    if (!v.noApi) {
      const security = securitySettings(v);
      api = await buildApi({ client: opened.connection.client, database: v.database, reader: opened.reader, security,
        alerting: alertingSettings(v, store.schema), latencyCacheMs: v.latencyCacheMs, logger: log });
      url = await listen(api, v.port);
      for (const line of apiStartLines(url, security)) console.error(line);
    }
    const source = v.input ? traceSource(v.input) : await simulatorSource({ hosts: v.hosts, durationNs: v.duration, seed: v.seed });
    if (kafka) {
      const k = await runThroughKafka(kafka, source, opened, v.database, controller.signal, log);
      const summary = await storeSummary(opened.reader, { batches: k.batches, events: k.events, duplicateEvents: 0, lostEvents: 0,
        lateEvents: 0, invalidEvents: 0, skippedInput: 0 });
      console.log(renderTable(summary, { title: `${v.input ?? `simulated fleet: ${v.hosts} hosts`} → Kafka ${kafka.brokers.join(',')} → ${opened.connection.location}`,
        heading: 'revokescope run --kafka', percentiles: 't-digest percentiles from the per-minute rollups' }));
      console.log(`\nproduced ${k.produced.toLocaleString('en-US')} batches; correlated ${k.events.toLocaleString('en-US')} events ` +
        `(${k.dlq} dead-lettered) in ${k.seconds.toFixed(1)} s`);
      if (url && v.serve && !controller.signal.aborted) await waitForSignal(controller.signal);
      return 0;
    }
    const embedded = runEmbedded({ source, store: opened.store, signal: controller.signal, log });
    const { pipeline, bus } = embedded;
    const startedAt = performance.now();
    const tty = process.stderr.isTTY === true;
    const ticker = tty ? setInterval(() => process.stderr.write(`\r\x1b[2K${progressLine(pipeline.stats, bus.depth, startedAt)}`), 250) : undefined;
    let stats: PipelineStats;
    try {
      stats = await embedded.done;
    } finally {
      if (ticker) { clearInterval(ticker); process.stderr.write(`\r\x1b[2K${progressLine(pipeline.stats, 0, startedAt)}\n`); }
    }
    const correlator = pipeline.correlators()[0]!;
    const seconds = (performance.now() - startedAt) / 1000;
    const summary = await storeSummary(opened.reader, { ...correlator.stats, skippedInput: 0, events: embedded.produced.events,
      batches: embedded.produced.batches }, openLockSummaries(correlator.openLocks()));
    const title = `${v.input ?? `simulated fleet: ${v.hosts} hosts, ${v.duration / 1e9} s, seed ${v.seed}`} → ${opened.connection.location}`;
    console.log(renderTable(summary, { title, heading: 'revokescope run', percentiles: 't-digest percentiles from the per-minute rollups' }));
    console.log(`\n${stats.events.toLocaleString('en-US')} events in ${seconds.toFixed(1)} s ` +
      `(${Math.round(stats.events / Math.max(seconds, 1e-3)).toLocaleString('en-US')} events/s)` +
      (stats.deadLettered ? `; ${stats.deadLettered} messages dead-lettered` : '') +
      (controller.signal.aborted ? ' — stopped early by signal, everything read was written' : ''));
    if (url && v.serve && !controller.signal.aborted) {
      console.log(`API: ${url}/api/v1/episodes  ${url}/api/v1/findings  ${url}/api/v1/latency?group_by=kernel  ${url}/api/v2/alerts  ` +
        `${url}/docs  (Ctrl-C to stop)`);
      await waitForSignal(controller.signal);
    } else {
      console.log(`query it: revokescope serve --data-dir ${v.dataDir}  (or run with --serve)`);
    }
    return 0;
  } finally {
    signals.dispose();
    await api?.close();
    await opened?.store.close();
    log.flush();
  }
}

/** The embedded demo through a real broker: produce the whole source (idempotent, acks=all), then drain the topic
 * with the fleet pipeline into the same store (docs/design.md §2: the fleet path in one process). */
async function runThroughKafka(settings: KafkaSettings, source: unknown, opened: OpenStore, database: string, signal: AbortSignal, log: Logger) {
  const startedAt = performance.now();
  const produced = { batches: 0, events: 0 };
  await feed(toAsyncIterable(source as never), await createKafkaSink(settings), produced, { signal, chunk: 256 });
  const bookkeeping = new ConsumerBookkeeping(opened.connection.client, database, `${hostname()} pid ${process.pid}`);
  const stats = await runFleet({ ...settings, store: opened.store, drain: true, bookkeeping, signal, log }).done;
  return { produced: produced.batches, events: stats.events, batches: stats.batches, dlq: stats.deadLettered,
    seconds: (performance.now() - startedAt) / 1000 };
}
