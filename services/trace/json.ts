// proto3 JSON for revokescope.v1 messages (https://protobuf.dev/programming-guides/json/).
//
// Reading is strict, as a conforming proto3 JSON parser is: field names in lowerCamelCase or as the
// proto (snake_case) name; 64-bit integers as decimal strings or JSON numbers; 32-bit integers as numbers
// (or strings); enums by name (or number); `null` means "default". Errors name the field path:
// unknown fields, wrong JSON types, out-of-range integers, unknown enum names or numbers, a field given
// twice (both spellings), two members of a oneof. Integers above 2^53 are accepted (the full uint64 range)
// but become the nearest JS number, as with the generated decoder (64-bit fields are JS numbers).
//
// Writing is canonical proto3 JSON: lowerCamelCase, 64-bit as strings, enums by name. Batches omit
// default values (proto3 JSON does); proto3 `optional` fields (Zap.had_vmas, DmaBufRevoke.device_has_vmas)
// keep their presence, so `"hadVmas": false` survives. Episodes and findings are written with every field.
import { v1 } from '../core/model.js';
import type { EventBatch, Episode, Finding } from '../core/model.js';
import type { revokescope } from '../../gen/proto.js';
import { FieldError } from './errors.js';
import { messageSpec, type FieldSpec, type MessageSpec } from './schema.js';

const U64_MAX = (1n << 64n) - 1n;
const I64_MIN = -(1n << 63n);
const I64_MAX = (1n << 63n) - 1n;
const INTEGER_STRING = /^-?\d+$/;

function typeOfJson(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  return typeof v;
}

function join(path: string, key: string): string {
  return path ? `${path}.${key}` : key;
}

/** A 64-bit or 32-bit integer from a JSON number or string, range-checked. */
function integer(v: unknown, kind: 'u64' | 'i64' | 'u32' | 'i32', path: string): number {
  let big: bigint;
  if (typeof v === 'number') {
    if (!Number.isInteger(v)) throw new FieldError(path, `expected an integer, got ${v}`);
    big = BigInt(v);
  } else if (typeof v === 'string') {
    const s = v.trim();
    if (INTEGER_STRING.test(s)) big = BigInt(s);
    else {
      // proto3 JSON also allows exponent notation ("1e9") as long as the value is an integer.
      const n = s === '' ? NaN : Number(s);
      if (!Number.isInteger(n)) throw new FieldError(path, `expected an integer, got ${JSON.stringify(v)}`);
      big = BigInt(n);
    }
  } else {
    throw new FieldError(path, `expected an integer (number or string), got ${typeOfJson(v)}`);
  }
  const [lo, hi] = kind === 'u64' ? [0n, U64_MAX] : kind === 'i64' ? [I64_MIN, I64_MAX]
    : kind === 'u32' ? [0n, 0xffff_ffffn] : [-(1n << 31n), (1n << 31n) - 1n];
  if (big < lo || big > hi) {
    const what = big < 0n && lo === 0n ? 'negative value' : 'value out of range';
    throw new FieldError(path, `${what} ${String(v)} for ${kind === 'u64' ? 'uint64' : kind === 'i64' ? 'int64' : kind === 'u32' ? 'uint32' : 'int32'}`);
  }
  return Number(big);
}

function scalar(field: FieldSpec, v: unknown, path: string): unknown {
  switch (field.scalar) {
    case 'u64': case 'i64': case 'u32': case 'i32':
      return integer(v, field.scalar, path);
    case 'bool':
      if (typeof v !== 'boolean') throw new FieldError(path, `expected true or false, got ${typeOfJson(v)}`);
      return v;
    case 'string':
      if (typeof v !== 'string') throw new FieldError(path, `expected a string, got ${typeOfJson(v)}`);
      return v;
    case 'bytes':
      if (typeof v !== 'string') throw new FieldError(path, `expected base64 bytes, got ${typeOfJson(v)}`);
      return Buffer.from(v, 'base64');
    case 'double': {
      if (typeof v === 'number') return v;
      if (v === 'NaN' || v === 'Infinity' || v === '-Infinity') return Number(v);
      const n = typeof v === 'string' && v.trim() !== '' ? Number(v) : NaN;
      if (Number.isNaN(n)) throw new FieldError(path, `expected a number, got ${typeOfJson(v)}`);
      return n;
    }
    default:
      throw new FieldError(path, 'unsupported field type');
  }
}

function enumValue(field: FieldSpec, v: unknown, path: string): number {
  const e = field.enumSpec!;
  if (typeof v === 'string') {
    const n = e.byName.get(v);
    if (n === undefined) {
      throw new FieldError(path, `unknown enum name ${JSON.stringify(v)} for ${e.fullName} (one of ${[...e.byName.keys()].join(', ')})`);
    }
    return n;
  }
  if (typeof v === 'number' && Number.isInteger(v)) {
    // proto3 enums are open, but an unknown value in our own event stream is bad input (docs/design.md §8).
    if (!e.byNumber.has(v)) throw new FieldError(path, `unknown enum number ${v} for ${e.fullName}`);
    return v;
  }
  throw new FieldError(path, `expected an enum name (string) for ${e.fullName}, got ${typeOfJson(v)}`);
}

function value(field: FieldSpec, v: unknown, path: string): unknown {
  if (field.message) return messageObject(field.message, v, path);
  if (field.enumSpec) return enumValue(field, v, path);
  return scalar(field, v, path);
}

/** proto3 JSON object → plain object with the generated code's property names (camelCase), numbers for
 * 64-bit values and enum numbers, ready for `v1.X.fromObject`. Throws FieldError. */
export function messageObject(spec: MessageSpec, json: unknown, path = ''): Record<string, unknown> {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new FieldError(path, `expected a JSON object for ${spec.fullName}, got ${typeOfJson(json)}`);
  }
  const out: Record<string, unknown> = {};
  const oneofSeen = new Map<string, string>();
  for (const key of Object.keys(json)) {
    const field = spec.byJsonKey.get(key);
    if (!field) throw new FieldError(path, `unknown field ${JSON.stringify(key)} in ${spec.fullName}`);
    if (Object.prototype.hasOwnProperty.call(out, field.jsonName)) {
      throw new FieldError(join(path, key), `field given twice (as ${field.jsonName} and ${field.protoName})`);
    }
    const v = (json as Record<string, unknown>)[key];
    const fieldPath = join(path, field.jsonName);
    if (v === null) { out[field.jsonName] = undefined; continue; } // null: the default value
    if (field.oneof) {
      const other = oneofSeen.get(field.oneof);
      if (other) throw new FieldError(path, `oneof ${field.oneof} has two members set: ${other} and ${field.jsonName}`);
      oneofSeen.set(field.oneof, field.jsonName);
    }
    if (field.repeated) {
      if (!Array.isArray(v)) throw new FieldError(fieldPath, `expected an array, got ${typeOfJson(v)}`);
      out[field.jsonName] = v.map((item, i) => {
        const itemPath = `${fieldPath}[${i}]`;
        if (item === null) throw new FieldError(itemPath, 'null is not allowed in a repeated field');
        return value(field, item, itemPath);
      });
    } else {
      out[field.jsonName] = value(field, v, fieldPath);
    }
  }
  for (const k of Object.keys(out)) if (out[k] === undefined) delete out[k];
  return out;
}

let batchSpec: MessageSpec | undefined;

/** A proto3 JSON EventBatch (already JSON.parse'd) → generated message. Throws FieldError with a path. */
export function batchFromJson(json: unknown): revokescope.v1.EventBatch {
  batchSpec ??= messageSpec('EventBatch');
  return v1.EventBatch.fromObject(messageObject(batchSpec, json));
}

const JSON_OPTIONS = { longs: String, enums: String } as const;
const JSON_OPTIONS_ALL = { longs: String, enums: String, defaults: true } as const;

/** EventBatch → canonical proto3 JSON object (defaults omitted, optional presence kept). */
export function batchToJson(batch: EventBatch): Record<string, unknown> {
  const msg = batch instanceof v1.EventBatch ? batch : v1.EventBatch.fromObject(batch as Record<string, unknown>);
  return withoutDefaults(v1.EventBatch.toObject(msg, JSON_OPTIONS));
}

/** Fields with presence (proto3 `optional`: Zap.had_vmas, DeviceInfo.memory_enabled, ...): false or 0 is a
 * value, not a default. */
const PRESENCE = new Set(['hadVmas', 'deviceHasVmas', 'zapBarsOnRevoke', 'memoryEnabled', 'powerState', 'revoked', 'openCount',
  'noCommandMemory', 'customVmOpsBars']);
/** 64-bit fields (written as strings) and enum fields (written by name) of EventBatch and its messages. */
const INT64 = new Set(['firstSeq', 'dropped', 'nowNs', 'tsNs', 'waitNs', 'start', 'length', 'durationNs', 'dmabufId', 'mappingId', 'groupId']);
const ENUMS = new Set(['kind', 'target', 'backing']);

/** proto3 JSON omits scalar fields at their default (protobufjs 7 keeps explicitly set zeros). Messages, even
 * empty ones such as `lockRelease: {}`, stay: they select the oneof member. */
function withoutDefaults(o: Record<string, unknown>): Record<string, unknown> {
  for (const [k, v] of Object.entries(o)) {
    if (Array.isArray(v)) { for (const x of v) if (x && typeof x === 'object') withoutDefaults(x as Record<string, unknown>); }
    else if (v && typeof v === 'object') withoutDefaults(v as Record<string, unknown>);
    else if (PRESENCE.has(k)) continue;
    else if (v === 0 || v === false || v === '' || (v === '0' && INT64.has(k)) ||
      (ENUMS.has(k) && typeof v === 'string' && v.endsWith('_UNSPECIFIED'))) delete o[k];
  }
  return o;
}

/** Episode → proto3 JSON object with every field (episodeId, revokeNs: "123", trigger: "RESET", ...). */
export function episodeToJson(ep: Episode | revokescope.v1.IEpisode): Record<string, unknown> {
  return v1.Episode.toObject(v1.Episode.fromObject(ep as Record<string, unknown>), JSON_OPTIONS_ALL);
}

/** Finding → proto3 JSON object with every field (kind: "SKIPPED_ZAP", severity: "CRITICAL", ...). The evidence,
 * a JSON text in the message, is written as the object it is (docs/rules.md: structured wherever JSON is written). */
export function findingToJson(f: Finding | revokescope.v1.IFinding): Record<string, unknown> {
  const out = v1.Finding.toObject(v1.Finding.fromObject(f as Record<string, unknown>), JSON_OPTIONS_ALL);
  out.evidence = evidenceObject(out.evidence);
  return out;
}

/** A finding's evidence as an object: the JSON text parsed; text that is not a JSON object (findings written by
 * hand or by older versions) is kept under `text`. */
export function evidenceObject(evidence: unknown): Record<string, unknown> {
  if (evidence && typeof evidence === 'object' && !Array.isArray(evidence)) return evidence as Record<string, unknown>;
  if (typeof evidence !== 'string' || evidence === '') return {};
  try {
    const v: unknown = JSON.parse(evidence);
    if (v && typeof v === 'object' && !Array.isArray(v)) return v as Record<string, unknown>;
  } catch { /* not JSON */ }
  return { text: evidence };
}

/** proto3 JSON → Episode with every field present (strict, like batchFromJson). */
export function episodeFromJson(json: unknown): Episode {
  const msg = v1.Episode.fromObject(messageObject(messageSpec('Episode'), json));
  return v1.Episode.toObject(msg, { defaults: true }) as Episode;
}

/** proto3 JSON → Finding with every field present (strict, like batchFromJson). An evidence object (as
 * findingToJson writes it) is read back into its JSON text. */
export function findingFromJson(json: unknown): Finding {
  const ev = json && typeof json === 'object' ? (json as Record<string, unknown>).evidence : undefined;
  if (ev && typeof ev === 'object' && !Array.isArray(ev)) json = { ...(json as Record<string, unknown>), evidence: JSON.stringify(ev) };
  const msg = v1.Finding.fromObject(messageObject(messageSpec('Finding'), json));
  return v1.Finding.toObject(msg, { defaults: true }) as Finding;
}
