// revokescope correlate --kafka BROKERS [--data-dir DIR | --clickhouse-url URL] [--group G]
// The fleet correlator: a consumer group member reading "revokescope.events", writing ClickHouse.
import { hostname } from 'node:os';
import { parseArgs } from 'node:util';
import { openStore, connectOptionsFrom, defaultSchemaOptions } from '../../store/index.js';
import { ConsumerBookkeeping } from '../../transport/kafka/bookkeeping.js';
import { kafkaSettings } from '../../transport/kafka/config.js';
import { DEFAULT_ACK_INTERVAL_MS, runFleet } from '../../pipeline/fleet.js';

const HELP = `usage: revokescope correlate --kafka HOST:PORT[,...] [options]

Consume collector batches from Kafka (consumer group), correlate them per partition and write episodes,
findings, raw events and host health to ClickHouse. Offsets are committed only after the writes are durable.

options:
  --kafka BROKERS          bootstrap brokers (env REVOKESCOPE_KAFKA_BROKERS)
  --data-dir DIR           embedded store (chDB) directory (default ./data)
  --clickhouse-url URL     ClickHouse server instead of chDB (env REVOKESCOPE_CLICKHOUSE_URL)
  --clickhouse-user U, --clickhouse-password P   (env REVOKESCOPE_CLICKHOUSE_USER, _PASSWORD)
  --clickhouse-database D  (env REVOKESCOPE_CLICKHOUSE_DATABASE, default revokescope)
  --cluster NAME           the schema is ReplicatedMergeTree + Distributed tables ON CLUSTER NAME (server only;
                           env REVOKESCOPE_CLICKHOUSE_CLUSTER)
  --group G                consumer group (env REVOKESCOPE_KAFKA_GROUP, default revokescope-correlator)
  --topic T                events topic (env REVOKESCOPE_KAFKA_EVENTS_TOPIC, default revokescope.events)
  --findings-topic T       (env REVOKESCOPE_KAFKA_FINDINGS_TOPIC, default revokescope.findings)
  --dlq-topic T            (env REVOKESCOPE_KAFKA_DLQ_TOPIC, default revokescope.dlq)
  --partitions N           partitions of topics created here (env REVOKESCOPE_KAFKA_PARTITIONS, default 12)
  --replication N          replication factor of topics created here (env REVOKESCOPE_KAFKA_REPLICATION, default 1)
  --commit-interval MS     flush + commit at most this often (default 2000)
  --checkpoint-interval MS store each partition's correlator state at most this often (default 10000) ...
  --checkpoint-messages N  ... or after N messages of the partition (default 20000); a restart resumes from
                           the newest checkpoint (table correlator_checkpoints) instead of replaying the
                           partition from its earliest offset
  --concurrency N          partitions handled concurrently (default 4)
  --drain                  stop at the end of the topic as seen at start: finish open state, commit, exit
  --no-findings-topic      do not publish findings to Kafka
  --quiet                  no progress lines
  -h, --help`;

export async function run(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv, allowPositionals: false, options: {
        kafka: { type: 'string' }, 'data-dir': { type: 'string' }, 'clickhouse-url': { type: 'string' },
        'clickhouse-user': { type: 'string' }, 'clickhouse-password': { type: 'string' },
        'clickhouse-database': { type: 'string' }, cluster: { type: 'string' },
        'checkpoint-interval': { type: 'string' }, 'checkpoint-messages': { type: 'string' }, concurrency: { type: 'string' },
        group: { type: 'string' }, topic: { type: 'string' }, 'findings-topic': { type: 'string' }, 'dlq-topic': { type: 'string' },
        partitions: { type: 'string' }, replication: { type: 'string' }, 'commit-interval': { type: 'string' },
        drain: { type: 'boolean' }, 'no-findings-topic': { type: 'boolean' }, quiet: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (err) {
    console.error(`revokescope correlate: ${(err as Error).message}`);
    return 2;
  }
  if (values.help) { console.log(HELP); return 0; }
  let settings;
  try {
    settings = kafkaSettings({ brokers: values.kafka, groupId: values.group, eventsTopic: values.topic,
      findingsTopic: values['findings-topic'], dlqTopic: values['dlq-topic'], partitions: values.partitions,
      replicationFactor: values.replication });
  } catch (err) {
    console.error(`revokescope correlate: ${(err as Error).message}`);
    return 2;
  }
  const num = (name: string, v: string | undefined, dflt: number, min: number): number => {
    const n = v === undefined ? dflt : Number(v);
    if (!Number.isInteger(n) || n < min) throw new Error(`--${name} must be an integer >= ${min}`);
    return n;
  };
  let commitIntervalMs: number, checkpointIntervalMs: number, checkpointMessages: number, concurrency: number;
  const database = values['clickhouse-database'] ?? process.env.REVOKESCOPE_CLICKHOUSE_DATABASE ?? defaultSchemaOptions.database;
  const cluster = values.cluster ?? (process.env.REVOKESCOPE_CLICKHOUSE_CLUSTER || undefined);
  try {
    commitIntervalMs = num('commit-interval', values['commit-interval'], DEFAULT_ACK_INTERVAL_MS, 0);
    checkpointIntervalMs = num('checkpoint-interval', values['checkpoint-interval'], 10_000, 0);
    checkpointMessages = num('checkpoint-messages', values['checkpoint-messages'], 20_000, 1);
    concurrency = num('concurrency', values.concurrency, 4, 1);
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(database)) throw new Error(`--clickhouse-database '${database}' is not a plain identifier`);
    if (cluster && !/^[A-Za-z_][A-Za-z0-9_]*$/.test(cluster)) throw new Error(`--cluster '${cluster}' is not a plain identifier`);
    if (cluster && !(values['clickhouse-url'] ?? process.env.REVOKESCOPE_CLICKHOUSE_URL)) {
      throw new Error('--cluster needs --clickhouse-url (chDB is a single node)');
    }
  } catch (err) {
    console.error(`revokescope correlate: ${(err as Error).message}`);
    return 2;
  }
  const log = values.quiet ? () => {} : (line: string) => console.error(`correlate: ${line}`);
  const { store, connection } = await openStore(connectOptionsFrom(values), { schema: { database, cluster } });
  const bookkeeping = new ConsumerBookkeeping(connection.client, database, cluster, `${hostname()} pid ${process.pid}`);
  await bookkeeping.migrate();
  log(`store ${connection.mode} ${connection.location}; kafka ${settings.brokers.join(',')} group ${settings.groupId}`);
  const stop = new AbortController();
  const fleet = runFleet({ ...settings, store, ackIntervalMs: commitIntervalMs, drain: !!values.drain, signal: stop.signal,
    publishFindings: !values['no-findings-topic'], log, bookkeeping, checkpointIntervalMs, checkpointMessages, concurrency });
  const onSignal = () => { log('stopping'); stop.abort(); };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const progress = values.quiet ? undefined : setInterval(() => {
    const s = fleet.pipeline.stats;
    log(`messages ${s.messages} (replayed ${s.replayedMessages}, restored ${s.restored} partitions) events ${s.events} episodes ${s.episodes} findings ${s.findings} dead-lettered ${s.deadLettered} lag ${fleet.source.lag}`);
  }, 5000);
  progress?.unref();
  let failed: unknown;
  try {
    await fleet.done;
  } catch (err) {
    failed = err;
  } finally {
    if (progress) clearInterval(progress);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await store.close();
  }
  const s = fleet.pipeline.stats;
  console.log(JSON.stringify({ messages: s.messages, replayedMessages: s.replayedMessages, events: s.events,
    episodes: s.episodes, findings: s.findings, dlq: s.deadLettered, commits: s.acks, checkpoints: s.checkpoints, restored: s.restored }));
  if (failed) {
    // e.g. a drain that stalled with messages unread: never exit 0 with the partition half read
    console.error(`revokescope correlate: ${(failed as Error).message ?? String(failed)}`);
    return 1;
  }
  return 0;
}
