// Reflection metadata for the revokescope.v1 messages, loaded from proto/ (the same files the static
// code is generated from), used only to check and convert proto3 JSON field by field.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';

const PROTO_FILES = ['revokescope/v1/events.proto', 'revokescope/v1/findings.proto'];

/** proto/ of this package: two levels up from services/trace in the sources, three from dist/. */
function findProtoDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const candidate = join(dir, 'proto');
    if (existsSync(join(candidate, PROTO_FILES[0]!))) return candidate;
    dir = dirname(dir);
  }
  throw new Error('revokescope: cannot find proto/revokescope/v1/events.proto next to the package');
}

export type ScalarKind = 'u64' | 'i64' | 'u32' | 'i32' | 'bool' | 'string' | 'bytes' | 'double';

export interface FieldSpec {
  /** proto name (snake_case), e.g. ts_ns */
  protoName: string;
  /** lowerCamelCase: the proto3 JSON name and the property name of the generated code, e.g. tsNs */
  jsonName: string;
  repeated: boolean;
  scalar?: ScalarKind;
  enumSpec?: EnumSpec;
  message?: MessageSpec;
  /** name of the real (non-synthetic) oneof this field belongs to */
  oneof?: string;
}

export interface EnumSpec { fullName: string; byName: Map<string, number>; byNumber: Map<number, string>; }
export interface MessageSpec { fullName: string; fields: FieldSpec[]; byJsonKey: Map<string, FieldSpec>; }

const SCALARS: Record<string, ScalarKind> = {
  uint64: 'u64', fixed64: 'u64', int64: 'i64', sint64: 'i64', sfixed64: 'i64',
  uint32: 'u32', fixed32: 'u32', int32: 'i32', sint32: 'i32', sfixed32: 'i32',
  bool: 'bool', string: 'string', bytes: 'bytes', double: 'double', float: 'double',
};

function lowerCamel(name: string): string {
  return name.replace(/_([a-z0-9])/g, (_m, c: string) => c.toUpperCase());
}

let root: protobuf.Root | undefined;
const messages = new Map<string, MessageSpec>();
const enums = new Map<string, EnumSpec>();

function loadRoot(): protobuf.Root {
  if (root) return root;
  const protoDir = findProtoDir();
  const r = new protobuf.Root();
  r.resolvePath = (_origin: string, target: string) => join(protoDir, target);
  r.loadSync(PROTO_FILES, { keepCase: true });
  r.resolveAll();
  root = r;
  return r;
}

function enumSpec(e: protobuf.Enum): EnumSpec {
  const fullName = e.fullName.replace(/^\./, '');
  let spec = enums.get(fullName);
  if (!spec) {
    spec = { fullName, byName: new Map(Object.entries(e.values)), byNumber: new Map() };
    for (const [name, num] of spec.byName) spec.byNumber.set(num, name);
    enums.set(fullName, spec);
  }
  return spec;
}

function messageSpecOf(t: protobuf.Type): MessageSpec {
  const fullName = t.fullName.replace(/^\./, '');
  const known = messages.get(fullName);
  if (known) return known;
  const spec: MessageSpec = { fullName, fields: [], byJsonKey: new Map() };
  messages.set(fullName, spec); // before recursing: messages may refer to each other
  for (const f of t.fieldsArray) {
    const field: FieldSpec = { protoName: f.name, jsonName: lowerCamel(f.name), repeated: f.repeated };
    if (f.resolvedType instanceof protobuf.Enum) field.enumSpec = enumSpec(f.resolvedType);
    else if (f.resolvedType instanceof protobuf.Type) field.message = messageSpecOf(f.resolvedType);
    else {
      const s = SCALARS[f.type];
      if (!s) throw new Error(`revokescope: unsupported field type ${f.type} in ${fullName}`);
      field.scalar = s;
    }
    // proto3 `optional` makes a synthetic oneof "_<name>": presence only, no exclusivity.
    if (f.partOf && !(f.options && f.options['proto3_optional'])) field.oneof = f.partOf.name;
    spec.fields.push(field);
    spec.byJsonKey.set(field.jsonName, field);
    spec.byJsonKey.set(field.protoName, field); // proto3 JSON parsers must accept the proto name too
  }
  return spec;
}

/** Field metadata of a revokescope.v1 message, e.g. messageSpec('EventBatch'). */
export function messageSpec(name: string): MessageSpec {
  const full = name.includes('.') ? name : `revokescope.v1.${name}`;
  return messages.get(full) ?? messageSpecOf(loadRoot().lookupType(full));
}

/** Enum metadata, e.g. enumByName('revokescope.v1.TriggerKind'). */
export function enumSpecByName(name: string): EnumSpec {
  const full = name.includes('.') ? name : `revokescope.v1.${name}`;
  return enums.get(full) ?? enumSpec(loadRoot().lookupEnum(full));
}
