// JSON Schemas of the alerting routes. /api/v2 shapes follow Alertmanager's v2 OpenAPI (api/v2/openapi.yaml:
// gettableAlert, alertGroup, gettableSilence, postableSilence, alertmanagerStatus, receiver).
import { DURATION_PATTERN } from './duration.js';
import { FINDING_KINDS, GROUP_LABELS, LATENCY_METRIC_NAMES, QUANTILES, QUERY_TYPES, SEVERITIES, THRESHOLD_OPS } from './types.js';

/** latency_regression: a kernel release or a glob of them (`*`, `?`). */
const kernelPattern = { type: 'string', minLength: 1, maxLength: 256, pattern: '^[^\\u0000-\\u001f]+$' } as const;

const str = { type: 'string' } as const;
const dateTime = { type: 'string', format: 'date-time' } as const;
export const labelSet = {
  type: 'object', additionalProperties: { type: 'string', maxLength: 4096 }, maxProperties: 64,
  propertyNames: { pattern: '^[A-Za-z_][A-Za-z0-9_]*$', maxLength: 128 },
} as const;
const labelSetOut = { type: 'object', additionalProperties: str } as const;

export const matcher = {
  type: 'object', required: ['name', 'value', 'isRegex'], additionalProperties: false,
  properties: {
    name: { type: 'string', minLength: 1, maxLength: 128 },
    value: { type: 'string', maxLength: 1024 },
    isRegex: { type: 'boolean' },
    isEqual: { type: 'boolean', default: true },
  },
} as const;

const receiver = { type: 'object', required: ['name'], properties: { name: str } } as const;

export const alertStatus = {
  type: 'object', required: ['state', 'silencedBy', 'inhibitedBy'],
  properties: {
    state: { type: 'string', enum: ['unprocessed', 'active', 'suppressed'] },
    silencedBy: { type: 'array', items: str },
    inhibitedBy: { type: 'array', items: str },
    mutedBy: { type: 'array', items: str },
  },
} as const;

export const gettableAlert = {
  type: 'object', required: ['labels', 'annotations', 'receivers', 'fingerprint', 'startsAt', 'updatedAt', 'endsAt', 'status'],
  properties: {
    labels: labelSetOut, annotations: labelSetOut, receivers: { type: 'array', items: receiver }, fingerprint: str,
    startsAt: dateTime, updatedAt: dateTime, endsAt: dateTime, generatorURL: { type: 'string', format: 'uri' }, status: alertStatus,
  },
} as const;

export const alertGroup = {
  type: 'object', required: ['labels', 'receiver', 'alerts'],
  properties: { labels: labelSetOut, receiver, alerts: { type: 'array', items: gettableAlert } },
} as const;

export const gettableSilence = {
  type: 'object', required: ['id', 'status', 'updatedAt', 'matchers', 'startsAt', 'endsAt', 'createdBy', 'comment'],
  properties: {
    id: str, status: { type: 'object', required: ['state'], properties: { state: { type: 'string', enum: ['expired', 'active', 'pending'] } } },
    updatedAt: dateTime,
    matchers: { type: 'array', items: { type: 'object', required: ['name', 'value', 'isRegex'],
      properties: { name: str, value: str, isRegex: { type: 'boolean' }, isEqual: { type: 'boolean' } } } },
    startsAt: dateTime, endsAt: dateTime, createdBy: str, comment: str,
  },
} as const;

export const postableSilence = {
  type: 'object', required: ['matchers', 'startsAt', 'endsAt', 'createdBy', 'comment'], additionalProperties: false,
  properties: {
    id: { type: 'string', maxLength: 64 },
    matchers: { type: 'array', minItems: 1, maxItems: 64, items: matcher },
    startsAt: dateTime, endsAt: dateTime,
    createdBy: { type: 'string', maxLength: 256 }, comment: { type: 'string', maxLength: 4096 },
  },
} as const;

export const alertmanagerStatus = {
  type: 'object', required: ['cluster', 'versionInfo', 'config', 'uptime'],
  properties: {
    cluster: { type: 'object', required: ['status', 'peers'], properties: {
      name: str, status: { type: 'string', enum: ['ready', 'settling', 'disabled'] },
      peers: { type: 'array', items: { type: 'object', required: ['name', 'address'], properties: { name: str, address: str } } } } },
    versionInfo: { type: 'object', required: ['branch', 'buildDate', 'buildUser', 'goVersion', 'revision', 'version'],
      properties: { branch: str, buildDate: str, buildUser: str, goVersion: str, revision: str, version: str } },
    config: { type: 'object', required: ['original'], properties: { original: str } },
    uptime: dateTime,
  },
} as const;

export const alertFilterQuery = {
  type: 'object', additionalProperties: false,
  properties: {
    active: { type: 'boolean', default: true, description: 'Show active alerts' },
    silenced: { type: 'boolean', default: true, description: 'Show silenced alerts' },
    inhibited: { type: 'boolean', default: true, description: 'Show inhibited alerts' },
    unprocessed: { type: 'boolean', default: true, description: 'Show unprocessed alerts' },
    filter: { type: 'array', items: { type: 'string', maxLength: 2048 }, maxItems: 64, description: 'Matchers, e.g. alertname="X"' },
    receiver: { type: 'string', maxLength: 512, description: 'Regex the receiver name must match' },
  },
} as const;

// ---- revokescope rules (v1)
export const ruleQuery = {
  type: 'object', required: ['type', 'window'], additionalProperties: false,
  properties: {
    type: { type: 'string', enum: [...QUERY_TYPES] },
    window: { type: 'string', pattern: DURATION_PATTERN, maxLength: 32 },
    groupBy: { type: 'array', items: { type: 'string', enum: [...GROUP_LABELS] }, maxItems: GROUP_LABELS.length, default: [] },
    kinds: { type: 'array', items: { type: 'string', enum: [...FINDING_KINDS] }, maxItems: FINDING_KINDS.length },
    severities: { type: 'array', items: { type: 'string', enum: [...SEVERITIES] }, maxItems: SEVERITIES.length },
    inconclusive: { type: 'boolean' },
    metric: { type: 'string', enum: [...LATENCY_METRIC_NAMES] },
    quantile: { type: 'number', enum: [...QUANTILES] },
    baseline: { ...kernelPattern, description: 'latency_regression: baseline kernel release or glob' },
    candidate: { ...kernelPattern, description: 'latency_regression: candidate kernel release or glob' },
    alpha: { type: 'number', minimum: 0.000001, maximum: 0.5, description: 'latency_regression: 1 − confidence of the interval whose lower end is the value (default 0.05)' },
  },
} as const;

const threshold = {
  type: 'object', required: ['op', 'value'], additionalProperties: false,
  properties: { op: { type: 'string', enum: [...THRESHOLD_OPS] }, value: { type: 'number', minimum: -1e18, maximum: 1e18 } },
} as const;

export const ruleInput = {
  type: 'object', required: ['name', 'query', 'threshold'], additionalProperties: false,
  properties: {
    id: { type: 'string', pattern: '^[a-z0-9][a-z0-9-]{0,62}$' },
    name: { type: 'string', pattern: '^[A-Za-z_][A-Za-z0-9_]{0,127}$' },
    enabled: { type: 'boolean', default: true },
    query: ruleQuery, threshold,
    for: { type: 'string', pattern: DURATION_PATTERN, maxLength: 32, default: '0s' },
    labels: { ...labelSet, default: {} },
    annotations: { ...labelSet, default: {} },
  },
} as const;

export const ruleView = {
  type: 'object', required: ['id', 'name', 'enabled', 'builtin', 'query', 'threshold', 'for', 'labels', 'annotations', 'updatedAt', 'health'],
  properties: {
    id: str, name: str, enabled: { type: 'boolean' }, builtin: { type: 'boolean' },
    query: { type: 'object', required: ['type', 'window', 'groupBy'], properties: {
      type: str, window: str, groupBy: { type: 'array', items: str }, kinds: { type: 'array', items: str },
      severities: { type: 'array', items: str }, inconclusive: { type: 'boolean' }, metric: str, quantile: { type: 'number' },
      baseline: str, candidate: str, alpha: { type: 'number' } } },
    threshold: { type: 'object', required: ['op', 'value'], properties: { op: str, value: { type: 'number' } } },
    for: str, labels: labelSetOut, annotations: labelSetOut, updatedAt: dateTime,
    health: { type: 'object', required: ['state', 'lastError', 'series'], properties: {
      state: { type: 'string', enum: ['unknown', 'ok', 'err'] }, lastEvaluation: dateTime, evaluationMs: { type: 'number' },
      lastError: str, series: { type: 'integer' } } },
  },
} as const;

export const alertView = {
  type: 'object', required: ['fingerprint', 'ruleId', 'state', 'labels', 'annotations', 'value', 'activeAt', 'updatedAt', 'silencedBy'],
  properties: {
    fingerprint: str, ruleId: str, state: { type: 'string', enum: ['pending', 'firing', 'resolved'] },
    labels: labelSetOut, annotations: labelSetOut, value: { type: 'number' },
    activeAt: dateTime, firedAt: dateTime, resolvedAt: dateTime, updatedAt: dateTime, silencedBy: { type: 'array', items: str },
  },
} as const;

/** A path with one id parameter: `name`, at most 64 characters (matching `pattern`). */
export const idParam = <N extends string>(name: N, pattern?: string) => ({
  type: 'object', required: [name] as [N], additionalProperties: false,
  properties: { [name]: { type: 'string', maxLength: 64, ...(pattern ? { pattern } : {}) } } as { [K in N]: { type: 'string'; maxLength: 64; pattern?: string } },
}) as const;
