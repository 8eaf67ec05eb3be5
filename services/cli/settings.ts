// The option groups commands compose (options.ts has the table format and the parsers), and what each group turns
// into: the plain settings objects the layers below take. Every REVOKESCOPE_* variable is declared here.
import { parseApiTokens, singleApiToken, type ApiToken, type SecurityConfig } from '../api/security/index.js';
import type { AlertingConfig, ReceiverConfig } from '../api/alerting/types.js';
import type { CorrelatorOptions } from '../core/correlator/index.js';
import type { ConnectOptions } from '../store/connect.js';
import { defaultSchemaOptions } from '../store/schema.js';
import { defaultKafkaSettings, parseBrokers, type CompressionName, type KafkaSettings } from '../transport/kafka/config.js';
import { duration, identifier, integer, list, oneOf, text, url, UsageError, type OptionTable, type Parser, type Values } from './options.js';

const S = 1e9;

/** pino levels; `silent` turns logging off. */
export const logOptions = {
  logLevel: { flag: 'log-level', env: 'REVOKESCOPE_LOG_LEVEL', arg: 'LEVEL', default: 'info' as const,
    parse: oneOf('fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'),
    help: 'log level of the JSON log lines on stderr: fatal, error, warn, info, debug, trace or silent' },
} satisfies OptionTable;

export const storeOptions = {
  dataDir: { flag: 'data-dir', env: 'REVOKESCOPE_DATA_DIR', arg: 'DIR', default: './data', parse: text,
    help: 'chDB data directory (the embedded store; reused by the next start)' },
  clickhouseUrl: { flag: 'clickhouse-url', env: 'REVOKESCOPE_CLICKHOUSE_URL', arg: 'URL', parse: url,
    help: 'a ClickHouse server instead of chDB' },
  clickhouseUser: { flag: 'clickhouse-user', env: 'REVOKESCOPE_CLICKHOUSE_USER', arg: 'USER', parse: text, help: 'ClickHouse user' },
  clickhousePassword: { flag: 'clickhouse-password', env: 'REVOKESCOPE_CLICKHOUSE_PASSWORD', arg: 'PASSWORD', parse: text,
    help: 'ClickHouse password' },
  database: { flag: 'clickhouse-database', env: 'REVOKESCOPE_CLICKHOUSE_DATABASE', arg: 'NAME', default: defaultSchemaOptions.database,
    parse: identifier, help: 'the database of every table' },
  cluster: { flag: 'cluster', env: 'REVOKESCOPE_CLICKHOUSE_CLUSTER', arg: 'NAME', parse: identifier,
    help: 'ReplicatedMergeTree + Distributed tables ON CLUSTER NAME (a server only)' },
} satisfies OptionTable;

export type StoreValues = Values<typeof storeOptions>;

/** What openStore takes: the connection and the schema (database, cluster). */
export function storeSettings(v: StoreValues, o: { printSchemaOnly?: boolean } = {}): { connect: ConnectOptions; schema: { database: string; cluster?: string } } {
  if (v.cluster && !v.clickhouseUrl && !o.printSchemaOnly) throw new UsageError('--cluster needs --clickhouse-url (chDB is a single node)');
  return {
    connect: { dataDir: v.dataDir, url: v.clickhouseUrl, username: v.clickhouseUser, password: v.clickhousePassword },
    schema: { database: v.database, ...(v.cluster ? { cluster: v.cluster } : {}) },
  };
}

const brokers: Parser<string[]> = (t, name) => {
  try { return parseBrokers(t); } catch (err) { throw new UsageError(`${name}: ${(err as Error).message}`); }
};

/** Kafka: the brokers (required where a command uses Kafka) and the names and shapes of its topics. */
export const kafkaOptions = {
  brokers: { flag: 'kafka', env: 'REVOKESCOPE_KAFKA_BROKERS', arg: 'BROKERS', parse: brokers, help: 'bootstrap brokers, HOST:PORT[,...]' },
  groupId: { flag: 'group', env: 'REVOKESCOPE_KAFKA_GROUP', arg: 'GROUP', default: defaultKafkaSettings.groupId, parse: text, help: 'consumer group' },
  eventsTopic: { flag: 'topic', env: 'REVOKESCOPE_KAFKA_EVENTS_TOPIC', arg: 'TOPIC', default: defaultKafkaSettings.eventsTopic, parse: text,
    help: 'collector batches' },
  findingsTopic: { flag: 'findings-topic', env: 'REVOKESCOPE_KAFKA_FINDINGS_TOPIC', arg: 'TOPIC', default: defaultKafkaSettings.findingsTopic,
    parse: text, help: 'findings (protobuf Finding)' },
  dlqTopic: { flag: 'dlq-topic', env: 'REVOKESCOPE_KAFKA_DLQ_TOPIC', arg: 'TOPIC', default: defaultKafkaSettings.dlqTopic, parse: text,
    help: 'messages that could not be used, with a reason header' },
  partitions: { flag: 'partitions', env: 'REVOKESCOPE_KAFKA_PARTITIONS', arg: 'N', default: defaultKafkaSettings.partitions, parse: integer(1, 10_000),
    help: 'partitions of topics created here' },
  replicationFactor: { flag: 'replication', env: 'REVOKESCOPE_KAFKA_REPLICATION', arg: 'N', default: defaultKafkaSettings.replicationFactor,
    parse: integer(1, 32), help: 'replication factor of topics created here' },
  compression: { env: 'REVOKESCOPE_KAFKA_COMPRESSION', default: defaultKafkaSettings.compression as CompressionName,
    parse: oneOf<CompressionName>('zstd', 'gzip', 'none'), help: 'producer compression: zstd, gzip or none' },
  clientId: { env: 'REVOKESCOPE_KAFKA_CLIENT_ID', default: defaultKafkaSettings.clientId, parse: text, help: 'Kafka client id' },
  debug: { env: 'REVOKESCOPE_KAFKA_DEBUG', boolean: true, help: 'log kafkajs at info level' },
} satisfies OptionTable;

export type KafkaValues = Values<typeof kafkaOptions>;

/** KafkaSettings, or undefined when no broker was given (`required`: then it is a usage error). */
export function kafkaSettingsOf(v: KafkaValues, required: boolean): KafkaSettings | undefined {
  if (!v.brokers) {
    if (required) throw new UsageError('Kafka brokers are required (--kafka HOST:PORT[,...] or REVOKESCOPE_KAFKA_BROKERS)');
    return undefined;
  }
  return { brokers: v.brokers, clientId: v.clientId, eventsTopic: v.eventsTopic, findingsTopic: v.findingsTopic, dlqTopic: v.dlqTopic,
    partitions: v.partitions, replicationFactor: v.replicationFactor, compression: v.compression, groupId: v.groupId, debug: v.debug };
}

/** The correlator's limits (docs/rules.md). */
export const correlatorOptions = {
  lateness: { flag: 'lateness', arg: 'DURATION', default: 2 * S, parse: duration({ min: 0, max: 3600 * S }),
    help: 'how far out of order events may arrive' },
  openLockLimit: { flag: 'open-lock-limit', arg: 'DURATION', default: 5 * S, parse: duration({ min: 1, max: 86_400 * S }),
    help: 'LOCK_HELD_OPEN after memory_lock is held this long' },
  slowRevokeLimit: { flag: 'slow-revoke-limit', arg: 'DURATION', default: 50e6, parse: duration({ min: 1, max: 3600 * S }),
    help: 'SLOW_REVOKE above this revoke latency' },
} satisfies OptionTable;

export function correlatorSettings(v: Values<typeof correlatorOptions>): Partial<CorrelatorOptions> {
  return { latenessNs: v.lateness, openLockLimitNs: v.openLockLimit, slowRevokeLimitNs: v.slowRevokeLimit };
}

const tokenList: Parser<ApiToken[]> = (t, name) => {
  try { return parseApiTokens(t, name); } catch (err) { throw new UsageError((err as Error).message); }
};
const oneToken = (scope: 'admin' | 'read'): Parser<ApiToken> => (t, name) => {
  try { return singleApiToken(t, name, scope); } catch (err) { throw new UsageError((err as Error).message); }
};

/** The API: where it listens, who may use it, its limits, and where its alerts go. */
export const apiOptions = {
  port: { flag: 'port', env: 'REVOKESCOPE_API_PORT', arg: 'N', default: 8080, parse: integer(0, 65535), help: 'API port (0: any free port)' },
  tokens: { env: 'REVOKESCOPE_API_TOKENS', parse: tokenList,
    help: 'bearer tokens "admin:TOKEN,read:TOKEN" (at least 16 characters each, e.g. from `openssl rand -hex 24`); none: the API is open, on loopback only' },
  adminToken: { env: 'REVOKESCOPE_API_TOKEN', parse: oneToken('admin'), help: 'one admin token (shorthand)' },
  readToken: { env: 'REVOKESCOPE_API_READ_TOKEN', parse: oneToken('read'), help: 'one read token (shorthand)' },
  rateLimit: { env: 'REVOKESCOPE_API_RATE_LIMIT', parse: integer(0, 100_000_000),
    help: 'requests per minute per client (per token, else per address); 0 turns the limit off' },
  bodyLimit: { env: 'REVOKESCOPE_API_BODY_LIMIT', parse: integer(1024, 1 << 30), help: 'largest request body in bytes' },
  latencyCacheMs: { env: 'REVOKESCOPE_API_LATENCY_CACHE_MS', default: 1000, parse: integer(0, 3_600_000),
    help: '/api/v1/latency shares a result for this many milliseconds (0: none)' },
  alertmanagerUrl: { env: 'REVOKESCOPE_ALERTMANAGER_URL', parse: url, help: 'push firing alerts to this Alertmanager' },
  webhookUrls: { env: 'REVOKESCOPE_WEBHOOK_URLS', parse: list(url), help: 'push alert notifications to these webhooks (comma separated)' },
  evaluationIntervalMs: { env: 'REVOKESCOPE_EVALUATION_INTERVAL_MS', default: 15_000, parse: integer(0, 86_400_000),
    help: 'evaluate the alerting rules every this many milliseconds (0: never on its own)' },
  externalUrl: { env: 'REVOKESCOPE_EXTERNAL_URL', parse: url, help: 'this API as users reach it, for links in notifications' },
} satisfies OptionTable;

export type ApiValues = Values<typeof apiOptions>;

export function securitySettings(v: ApiValues): Partial<SecurityConfig> {
  const tokens = [...(v.tokens ?? []), ...(v.adminToken ? [v.adminToken] : []), ...(v.readToken ? [v.readToken] : [])];
  return { tokens, ...(v.rateLimit !== undefined ? { rateLimitMax: v.rateLimit } : {}), ...(v.bodyLimit !== undefined ? { bodyLimit: v.bodyLimit } : {}) };
}

export function alertingSettings(v: ApiValues, schema: { database: string; cluster?: string }): Partial<AlertingConfig> {
  const receivers: ReceiverConfig[] = [];
  if (v.alertmanagerUrl) receivers.push({ name: 'alertmanager', type: 'alertmanager', url: v.alertmanagerUrl });
  for (const [i, u] of (v.webhookUrls ?? []).entries()) receivers.push({ name: `webhook-${i + 1}`, type: 'webhook', url: u });
  return { database: schema.database, ...(schema.cluster ? { cluster: schema.cluster } : {}), receivers,
    evaluationIntervalMs: v.evaluationIntervalMs, ...(v.externalUrl ? { externalUrl: v.externalUrl } : {}) };
}
