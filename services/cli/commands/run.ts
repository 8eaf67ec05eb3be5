// `revokescope run` (what `npm start` runs): the embedded pipeline in one process, no servers.
// source (simulator | --input FILE) → EventBatch protobuf → in-process bus → correlator → ClickHouse (chDB
// in --data-dir, or --clickhouse-url) → read API on 127.0.0.1:--port.
import { parseArgs } from 'node:util';
import type { FastifyInstance } from 'fastify';
import { apiConfigProblem, apiStartLines, buildApi, listen } from '../../api/server.js';
import { runEmbedded } from '../../pipeline/embedded.js';
import { feed } from '../../pipeline/feed.js';
import { runFleet } from '../../pipeline/fleet.js';
import type { PipelineStats } from '../../pipeline/pipeline.js';
import { simulatorSource, traceSource } from '../../pipeline/sources.js';
import { storeSummary } from '../../pipeline/summary.js';
import { openLockSummaries, renderTable } from '../../report/index.js';
import { connectOptionsFrom, openStore, renderSchema, defaultSchemaOptions, type OpenStore } from '../../store/index.js';
import { hostname } from 'node:os';
import { toAsyncIterable } from '../../pipeline/sources.js';
import { ConsumerBookkeeping } from '../../transport/kafka/bookkeeping.js';
import { kafkaSettings } from '../../transport/kafka/config.js';
import { createKafkaSink } from '../../transport/kafka/producer.js';
import { parseDuration, storeFlags, UsageError, waitForSignal, onSignals, progressLine } from '../../pipeline/cli.js';

const HELP = `usage: revokescope run [options]

Runs the embedded pipeline: a simulated fleet (default) or a trace file → correlator → ClickHouse (chDB in
--data-dir, no server) → read API on 127.0.0.1. Ctrl-C stops the source, writes what was read, exits 0.

source:
  --hosts N              simulated hosts (default 50)
  --duration D           simulated time: 60, 60s, 2m, 500ms (default 60s)
  --seed N               simulator seed (default 1)
  --input FILE           read a trace instead (.jsonl, .pb, - for stdin)
transport:
  --kafka BROKERS        go through Kafka instead of the in-process bus (env REVOKESCOPE_KAFKA_BROKERS): the source is
                         produced to revokescope.events, then a correlator consumer group drains it into the store
store:
  --data-dir DIR         chDB data directory (default ./data; reused by the next start)
  --clickhouse-url URL   a ClickHouse server instead of chDB (env REVOKESCOPE_CLICKHOUSE_URL)
  --clickhouse-user U    (env REVOKESCOPE_CLICKHOUSE_USER)
  --clickhouse-password P (env REVOKESCOPE_CLICKHOUSE_PASSWORD)
  --clickhouse-database D (env REVOKESCOPE_CLICKHOUSE_DATABASE, default revokescope)
  --cluster NAME         ReplicatedMergeTree + Distributed tables ON CLUSTER NAME (server only)
  --print-schema         print the DDL (honours --cluster and --clickhouse-database) and exit
api:
  --port N               API port on 127.0.0.1 (default 8080; 0 = any free port)
  --serve                keep serving the API after the source ends, until Ctrl-C
  --no-api               do not start the API
                         (the full API: /api/v1/*, /api/v2/* (Alertmanager v2), /healthz, /readyz, /metrics,
                         /openapi.json, /docs; tokens and limits from env: see \`revokescope serve --help\`)
`;

export async function run(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv, allowPositionals: false, strict: true,
      options: {
        help: { type: 'boolean', short: 'h' },
        hosts: { type: 'string' }, duration: { type: 'string' }, seed: { type: 'string' }, input: { type: 'string' },
        port: { type: 'string' }, serve: { type: 'boolean' }, 'no-api': { type: 'boolean' }, 'print-schema': { type: 'boolean' },
        kafka: { type: 'string' },
        ...storeFlags,
      },
    }));
  } catch (err) {
    console.error(`revokescope run: ${(err as Error).message}`);
    return 2;
  }
  if (values.help) { console.log(HELP); return 0; }

  let hosts: number; let durationNs: number; let seed: number; let port: number;
  let database: string;
  try {
    hosts = intFlag('hosts', values.hosts, 50, 1, 100_000);
    durationNs = parseDuration(values.duration ?? '60s');
    seed = intFlag('seed', values.seed, 1, 0, 2 ** 32 - 1);
    port = intFlag('port', values.port, 8080, 0, 65535);
    database = values['clickhouse-database'] ?? process.env.REVOKESCOPE_CLICKHOUSE_DATABASE ?? defaultSchemaOptions.database;
    if (!values['no-api'] && !values['print-schema']) {
      const problem = apiConfigProblem(process.env);
      if (problem) throw new UsageError(problem);
    }
    if (values.cluster && !(values['clickhouse-url'] ?? process.env.REVOKESCOPE_CLICKHOUSE_URL) && !values['print-schema']) {
      throw new UsageError('--cluster needs --clickhouse-url (chDB is a single node)');
    }
  } catch (err) {
    console.error(`revokescope run: ${(err as Error).message}`);
    return 2;
  }
  const schema = { database, cluster: values.cluster };
  if (values['print-schema']) {
    process.stdout.write(renderSchema({ ...defaultSchemaOptions, ...schema }));
    return 0;
  }

  const controller = new AbortController();
  const signals = onSignals(() => controller.abort());
  let opened: OpenStore | undefined;
  let api: FastifyInstance | undefined;
  try {
    opened = await openStore(connectOptionsFrom(values), {
      schema,
      // a simulated fleet runs faster than real time: anchor its window so it ends about now
      wallClockShiftNs: values.input ? 0 : -durationNs,
    });
    let url: string | undefined;
    if (!values['no-api']) {
      api = await buildApi({ client: opened.connection.client, database, reader: opened.reader });
      url = await listen(api, port);
      for (const line of apiStartLines(url, process.env)) console.error(line);
    }
    const source = values.input ? traceSource(values.input) : await simulatorSource({ hosts, durationNs, seed });
    const kafkaBrokers = values.kafka ?? process.env.REVOKESCOPE_KAFKA_BROKERS;
    if (kafkaBrokers) {
      const k = await runThroughKafka(kafkaBrokers, source, opened, database, controller.signal);
      const summary = await storeSummary(opened.reader, { batches: k.batches, events: k.events, duplicateEvents: 0, lostEvents: 0,
        lateEvents: 0, invalidEvents: 0, skippedInput: 0 });
      console.log(renderTable(summary, { title: `${values.input ?? `simulated fleet: ${hosts} hosts`} → Kafka ${kafkaBrokers} → ${opened.connection.location}`,
        heading: 'revokescope run --kafka', percentiles: 't-digest percentiles from the per-minute rollups' }));
      console.log(`\nproduced ${k.produced.toLocaleString('en-US')} batches; correlated ${k.events.toLocaleString('en-US')} events ` +
        `(${k.dlq} dead-lettered) in ${k.seconds.toFixed(1)} s`);
      if (url && values.serve && !controller.signal.aborted) await waitForSignal(controller.signal);
      return 0;
    }
    const embedded = runEmbedded({ source, store: opened.store, signal: controller.signal });
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
    const title = `${values.input ?? `simulated fleet: ${hosts} hosts, ${durationNs / 1e9} s, seed ${seed}`} → ${opened.connection.location}`;
    console.log(renderTable(summary, { title, heading: 'revokescope run', percentiles: 't-digest percentiles from the per-minute rollups' }));
    console.log(`\n${stats.events.toLocaleString('en-US')} events in ${seconds.toFixed(1)} s ` +
      `(${Math.round(stats.events / Math.max(seconds, 1e-3)).toLocaleString('en-US')} events/s)` +
      (stats.deadLettered ? `; ${stats.deadLettered} messages dead-lettered` : '') +
      (controller.signal.aborted ? ' — stopped early by signal, everything read was written' : ''));
    if (url && values.serve && !controller.signal.aborted) {
      console.log(`API: ${url}/api/v1/episodes  ${url}/api/v1/findings  ${url}/api/v1/latency?group_by=kernel  ${url}/api/v2/alerts  ` +
        `${url}/docs  (Ctrl-C to stop)`);
      await waitForSignal(controller.signal);
    } else {
      console.log(`query it: revokescope serve --data-dir ${values['data-dir'] ?? './data'}  (or run with --serve)`);
    }
    return 0;
  } catch (err) {
    if (err instanceof UsageError) { console.error(`revokescope run: ${err.message}`); return 2; }
    throw err;
  } finally {
    signals.dispose();
    await api?.close();
    await opened?.store.close();
  }
}

/** The embedded demo through a real broker: produce the whole source (idempotent, acks=all), then drain the
 * topic with the fleet correlator consumer into the same store (DESIGN §2 fleet path in one process). */
async function runThroughKafka(brokers: string, source: unknown, opened: OpenStore, database: string, signal: AbortSignal) {
  const settings = kafkaSettings({ brokers });
  const startedAt = performance.now();
  const produced = { batches: 0, events: 0 };
  await feed(toAsyncIterable(source as never), await createKafkaSink(settings), produced, { signal, chunk: 256 });
  const bookkeeping = new ConsumerBookkeeping(opened.connection.client, database, undefined, `${hostname()} pid ${process.pid}`);
  await bookkeeping.migrate();
  const stats = await runFleet({ ...settings, store: opened.store, drain: true, bookkeeping, signal,
    log: (line) => console.error(line) }).done;
  return { produced: produced.batches, events: stats.events, batches: stats.batches, dlq: stats.deadLettered,
    seconds: (performance.now() - startedAt) / 1000 };
}

function intFlag(name: string, v: string | undefined, dflt: number, min: number, max: number): number {
  if (v === undefined) return dflt;
  if (!/^[0-9]+$/.test(v) || Number(v) < min || Number(v) > max) throw new UsageError(`--${name} must be an integer ${min}..${max}, got '${v}'`);
  return Number(v);
}
