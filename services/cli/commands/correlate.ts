// revokescope correlate --kafka BROKERS [--data-dir DIR | --clickhouse-url URL] [--group G]
// Fleet mode: the pipeline over Kafka (a consumer group member of "revokescope.events") into ClickHouse.
import { hostname } from 'node:os';
import { DEFAULT_ACK_INTERVAL_MS, runFleet } from '../../pipeline/fleet.js';
import { openStore } from '../../store/index.js';
import { ConsumerBookkeeping } from '../../transport/kafka/bookkeeping.js';
import { createLogger } from '../logger.js';
import { duration, helpText, integer, parseCommand, UsageError, type OptionTable } from '../options.js';
import { correlatorOptions, correlatorSettings, kafkaOptions, kafkaSettingsOf, logOptions, storeOptions, storeSettings } from '../settings.js';

const fleetOptions = {
  ackInterval: { flag: 'commit-interval', arg: 'DURATION', default: DEFAULT_ACK_INTERVAL_MS * 1e6, parse: duration({ min: 0, max: 3600e9 }),
    help: 'flush the store and commit what it holds at most this often' },
  checkpointInterval: { flag: 'checkpoint-interval', arg: 'DURATION', default: 10e9, parse: duration({ min: 0, max: 86_400e9 }),
    help: 'store each partition\'s correlator state at most this often ...' },
  checkpointMessages: { flag: 'checkpoint-messages', arg: 'N', default: 20_000, parse: integer(1),
    help: '... or after N messages of the partition; a restart resumes from the newest checkpoint instead of the partition\'s start' },
  concurrency: { flag: 'concurrency', arg: 'N', default: 4, parse: integer(1, 1024), help: 'partitions handled concurrently' },
  drain: { flag: 'drain', boolean: true,
    help: 'stop at the end of the topic as seen at start: finish open state, commit, exit (1 if it cannot get there)' },
  noFindingsTopic: { flag: 'no-findings-topic', boolean: true, help: 'do not publish findings to Kafka' },
  quiet: { flag: 'quiet', boolean: true, help: 'no progress lines' },
} satisfies OptionTable;

const HELP = helpText('revokescope correlate --kafka HOST:PORT[,...] [options]', `
Consumes collector batches from Kafka (a consumer group), correlates them per partition and writes episodes,
findings, raw events and host health to ClickHouse. Offsets are committed only after the writes are durable.`,
[['fleet', fleetOptions], ['kafka', kafkaOptions], ['store', storeOptions], ['correlator', correlatorOptions], ['logging', logOptions]]);

export async function run(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  let o;
  let kafka, store;
  try {
    o = parseCommand(argv, { ...fleetOptions, ...kafkaOptions, ...storeOptions, ...correlatorOptions, ...logOptions }, env);
    if (o.help) { console.log(HELP); return 0; }
    kafka = kafkaSettingsOf(o.values, true)!;
    store = storeSettings(o.values);
  } catch (err) {
    if (err instanceof UsageError) { console.error(`revokescope correlate: ${err.message}`); return 2; }
    throw err;
  }
  const v = o.values;
  const log = createLogger('correlate', v.quiet ? 'warn' : v.logLevel);
  const { store: opened, connection } = await openStore(store.connect, { schema: store.schema });
  const bookkeeping = new ConsumerBookkeeping(connection.client, v.database, `${hostname()} pid ${process.pid}`);
  log.info(`store ${connection.mode} ${connection.location}; kafka ${kafka.brokers.join(',')} group ${kafka.groupId}`);
  const stop = new AbortController();
  const fleet = runFleet({ ...kafka, store: opened, correlator: correlatorSettings(v), ackIntervalMs: Math.round(v.ackInterval / 1e6),
    drain: v.drain, signal: stop.signal, publishFindings: !v.noFindingsTopic, log, bookkeeping,
    checkpointIntervalMs: Math.round(v.checkpointInterval / 1e6), checkpointMessages: v.checkpointMessages, concurrency: v.concurrency });
  const onSignal = () => { log.info('stopping'); stop.abort(); };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const progress = setInterval(() => {
    const s = fleet.pipeline.stats;
    log.info(`messages ${s.messages} (replayed ${s.replayedMessages}, restored ${s.restored} partitions) events ${s.events} episodes ${s.episodes} findings ${s.findings} dead-lettered ${s.deadLettered} lag ${fleet.source.lag}`);
  }, 5000);
  progress.unref();
  let failed: unknown;
  try {
    await fleet.done;
  } catch (err) {
    failed = err;
  } finally {
    clearInterval(progress);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await opened.close();
  }
  const s = fleet.pipeline.stats;
  console.log(JSON.stringify({ messages: s.messages, replayedMessages: s.replayedMessages, events: s.events,
    episodes: s.episodes, findings: s.findings, dlq: s.deadLettered, commits: s.acks, checkpoints: s.checkpoints, restored: s.restored }));
  if (failed) {
    // e.g. a drain that stalled with messages unread: never exit 0 with the partition half read
    log.error({ err: failed }, 'correlate failed');
    console.error(`revokescope correlate: ${(failed as Error).message ?? String(failed)}`);
    log.flush();
    return 1;
  }
  log.flush();
  return 0;
}
