// Rules, alerts, silences and alerting configuration (docs/design.md §6).
import { findingKindNames } from '../schemas.js';
import { DEFAULT_MATCH_BUDGET_MS, type Matcher } from './matchers.js';

export const QUERY_TYPES = ['finding_count', 'redundant_zap_ns', 'latency_quantile', 'event_loss', 'host_silent', 'latency_regression'] as const;
export type QueryType = (typeof QUERY_TYPES)[number];
/** Finding kind names, from proto/ (FAULT_WHILE_REVOKED included). */
export const FINDING_KINDS: readonly string[] = findingKindNames;
export const SEVERITIES = ['INFO', 'WARNING', 'CRITICAL'] as const;
export const LATENCY_METRIC_NAMES = ['revoke', 'hold', 'wait', 'zap', 'move'] as const;
export const QUANTILES = [0.5, 0.9, 0.99, 0.999] as const;
/** latency_regression: the metrics and quantiles `revokescope compare` compares (services/report/compare.ts). */
export const REGRESSION_METRICS = ['revoke', 'hold'] as const;
export const REGRESSION_QUANTILES = [0.5, 0.9, 0.99] as const;
export const GROUP_LABELS = ['hostname', 'boot_id', 'device', 'driver', 'kernel_release', 'trigger', 'kind', 'severity'] as const;
export type GroupLabel = (typeof GROUP_LABELS)[number];
export const THRESHOLD_OPS = ['>', '>=', '<', '<=', '==', '!='] as const;
export type ThresholdOp = (typeof THRESHOLD_OPS)[number];

/** What a rule measures: one of a fixed set of parameterised ClickHouse queries (queries.ts). */
export interface RuleQuery {
  type: QueryType;
  /** Look-back window, e.g. "15m" (host_silent: hosts seen within this window are watched). */
  window: string;
  /** Labels each result row is split by (which ones a type allows: queries.ts GROUPABLE). */
  groupBy: GroupLabel[];
  /** finding_count: finding kinds (empty = all). */
  kinds?: string[];
  /** finding_count: severities (empty = all). */
  severities?: string[];
  /** finding_count, redundant_zap_ns: true = only inconclusive, false = only certain; absent = both. A critical
   * (paging) rule must set false (checkRule). */
  inconclusive?: boolean;
  /** latency_quantile, latency_regression */
  metric?: (typeof LATENCY_METRIC_NAMES)[number];
  quantile?: number;
  /** latency_regression: kernel releases (or globs) compared within trigger × driver strata over the window; the
   * value is the lower end of the (1 − alpha) interval of candidate ÷ baseline at the quantile (default alpha 0.05). */
  baseline?: string;
  candidate?: string;
  alpha?: number;
}

export interface Rule {
  id: string;
  /** The alertname label. */
  name: string;
  enabled: boolean;
  builtin: boolean;
  query: RuleQuery;
  threshold: { op: ThresholdOp; value: number };
  /** How long a condition must hold before pending turns firing ("0s" = at once). */
  for: string;
  labels: Record<string, string>;
  /** Templates: {{ $labels.NAME }}, {{ $value }}. */
  annotations: Record<string, string>;
  updatedAt: number;
}

export type AlertState = 'pending' | 'firing' | 'resolved';

export interface AlertRecord {
  fingerprint: string;
  ruleId: string;
  state: AlertState;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  value: number;
  /** When the condition was first seen true (ms). */
  activeAt: number;
  /** When it turned firing (ms; 0 = never). */
  firedAt: number;
  /** When it was resolved (ms; 0 = not resolved). */
  resolvedAt: number;
  /** Last evaluation that touched it (ms). */
  updatedAt: number;
}

export interface Silence {
  id: string;
  matchers: Matcher[];
  startsAt: number;
  endsAt: number;
  createdBy: string;
  comment: string;
  updatedAt: number;
}

export interface ReceiverConfig {
  name: string;
  /** alertmanager: POST {url}/api/v2/alerts; webhook: POST url with the Alertmanager v4 webhook payload. */
  type: 'alertmanager' | 'webhook';
  url: string;
  /** Only alerts matching all of these go to this receiver (Alertmanager matcher strings). */
  matchers?: string[];
  sendResolved?: boolean;
  /** Extra headers, e.g. Authorization. */
  headers?: Record<string, string>;
}

export interface AlertingConfig {
  /** ClickHouse database of the store's tables and ours. */
  database: string;
  /** The store's cluster (ON CLUSTER DDL) when the store is one. */
  cluster?: string;
  /** Evaluation period in ms (0 = no loop; evaluate() is called by hand). */
  evaluationIntervalMs: number;
  /** Resolved alerts stay visible this long (ms). */
  resolvedRetentionMs: number;
  /** Labels alerts are grouped by in /api/v2/alerts/groups and webhook notifications. */
  groupBy: string[];
  receivers: ReceiverConfig[];
  /** Resend firing groups this often (ms). */
  repeatIntervalMs: number;
  /** Notification delivery: attempts and first backoff (doubles each retry, capped at 30 s). */
  notifyAttempts: number;
  notifyBackoffMs: number;
  notifyTimeoutMs: number;
  /** Link back to us in notifications. */
  externalUrl: string;
  /** Seed the built-in rules on an empty store. */
  seedDefaultRules: boolean;
  /** Time one request may spend running matcher regexes (filters, silences, receiver) before it is a 400. */
  matchBudgetMs: number;
  /** The rule evaluator lease (lease.ts): a claim not renewed for this long lapses (ms; 0 = three evaluation
   * intervals, at least 30 s). */
  leaseTtlMs: number;
}

export const defaultAlertingConfig: AlertingConfig = {
  database: 'revokescope',
  evaluationIntervalMs: 15_000,
  resolvedRetentionMs: 15 * 60_000,
  groupBy: ['alertname'],
  receivers: [],
  repeatIntervalMs: 4 * 3600_000,
  notifyAttempts: 5,
  notifyBackoffMs: 500,
  notifyTimeoutMs: 10_000,
  externalUrl: 'http://127.0.0.1:8080',
  seedDefaultRules: true,
  matchBudgetMs: DEFAULT_MATCH_BUDGET_MS,
  leaseTtlMs: 0,
};
