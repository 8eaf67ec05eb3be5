// Shared JSON Schemas and parsers for the read API. Enum names come from proto/, so the API follows the model.
// summary/tags on route schemas: the OpenAPI fields @fastify/swagger declares on FastifySchema
import type {} from '@fastify/swagger';
import { FindingKind, Severity, TriggerKind } from '../core/model.js';
import { BadParameter } from './errors.js';
import { parseTime } from './params.js';

const names = (e: object, skipZero = true): string[] =>
  Object.entries(e).filter(([, v]) => typeof v === 'number' && (!skipZero || v !== 0)).map(([k]) => k);

export const triggerNames = names(TriggerKind, false);
export const findingKindNames = names(FindingKind);
export const severityNames = names(Severity);

/** Wall-clock bound: RFC 3339 date-time or integer milliseconds since the epoch. */
export const timeParam = {
  type: 'string', maxLength: 40,
  pattern: '^([0-9]{1,15}|[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{1,9})?(Z|[+-][0-9]{2}:[0-9]{2}))$',
  description: 'RFC 3339 date-time or milliseconds since the epoch',
} as const;

export const label = { type: 'string', minLength: 1, maxLength: 256 } as const;
export const limitParam = { type: 'integer', minimum: 1, maximum: 10_000, default: 100 } as const;
/** A VM or pod name: what libvirt and Kubernetes allow (printable, no control characters), bounded. */
export const workloadParam = (description: string) => ({ type: 'string', minLength: 1, maxLength: 256, pattern: '^[^\\u0000-\\u001f]+$', description }) as const;
export const commParam = { type: 'string', minLength: 1, maxLength: 64, description: 'acquiring task name (TASK_COMM_LEN is 16; longer matches nothing)' } as const;
export const cursorParam = { type: 'string', maxLength: 600, pattern: '^[A-Za-z0-9_-]+$', description: 'nextCursor of the previous page' } as const;
export const u64 = { type: 'string', pattern: '^[0-9]+$', description: '64-bit unsigned integer (proto3 JSON: a string)' } as const;

export { errorSchema } from './errors.js';

export { MAX_TIME_MS, parseTime } from './params.js';

export function parseRange(q: { from?: string; to?: string }): { fromMs?: number; toMs?: number } {
  const fromMs = parseTime('querystring/from', q.from);
  const toMs = parseTime('querystring/to', q.to);
  if (fromMs !== undefined && toMs !== undefined && fromMs >= toMs) throw new BadParameter('querystring/from must be before querystring/to');
  return { fromMs, toMs };
}

export function encodeCursor(c: { timeNs: string; id: string }): string {
  return Buffer.from(`${c.timeNs}:${c.id}`).toString('base64url');
}

export function decodeCursor(s: string | undefined): { timeNs: string; id: string } | undefined {
  if (s === undefined) return undefined;
  const text = Buffer.from(s, 'base64url').toString('utf8');
  const m = /^([0-9]{1,20}):(.{1,256})$/s.exec(text);
  if (!m || BigInt(m[1]!) > 9223372036854775807n) throw new BadParameter('querystring/cursor is not a cursor this API issued');
  return { timeNs: m[1]!, id: m[2]! };
}

export function parseBool(v: 'true' | 'false' | undefined): boolean | undefined {
  return v === undefined ? undefined : v === 'true';
}
