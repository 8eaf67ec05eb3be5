// A poison message of the kind the hardening review found (issue 16): bytes that protobufjs decodes and
// validateBatch accepts, because protobufjs reads a known field by its number whatever its wire type, while the
// schema says otherwise. Here BarFault.bar (field 1, a varint) arrives as a fixed32: protobufjs reads the fixed32's
// first byte as a varint, then the rest as fields (bar = 2, ok = true). 35 bytes.
import { v1 } from '../../services/core/model.js';

export function poisonBatch(hostname = 'h', device = '0000:3b:00.0'): Uint8Array {
  const head = v1.Event.encode({ tsNs: 5, device }).finish();
  const body = [0x0d, 0x01, 0x08, 0x02, 0x18, 0x01]; // bar as fixed32 (tag 0x0d), then bar = 2, ok = true as varints
  const event = [...head, 0x92, 0x01, body.length, ...body]; // Event.bar_fault (field 18), length-delimited
  const host = v1.HostInfo.encode({ hostname, bootId: 'b' }).finish();
  return new Uint8Array([0x0a, host.length, ...host, 0x22, event.length, ...event]);
}
