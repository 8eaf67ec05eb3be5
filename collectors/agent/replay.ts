// Raw captures (trace_pipe text or bpftrace output, as written by `collect --raw`) -> EventBatches,
// through the same decoder as the live agent. Used for fixtures and to analyze raw ftrace text.
import { Capability, type Event, type EventBatch } from '../../services/core/model.js';
import { PROFILES } from '../probes/profiles.js';
import { parseTraceLine } from '../ftrace/parse.js';
import { parseBpftraceLine } from '../bpftrace/parse.js';
import { Decoder } from './decoder.js';

export interface RawHeader { backend: 'ftrace' | 'bpftrace'; profile: string; kernel: string; memoryLockOffset?: number; devices: { address: string; driver: string }[] }

export function parseRawHeader(line: string): RawHeader | undefined {
  if (!line.startsWith('# revokescope raw ')) return undefined;
  const kv = Object.fromEntries([...line.matchAll(/(\w+)=(\S*)/g)].map((m) => [m[1]!, m[2]!]));
  return {
    backend: kv.backend === 'bpftrace' ? 'bpftrace' : 'ftrace', profile: kv.profile ?? '', kernel: kv.kernel ?? '',
    memoryLockOffset: kv.memory_lock_offset ? Number(kv.memory_lock_offset) : undefined,
    devices: (kv.devices ?? '').split(',').filter(Boolean).map((d) => { const [address, driver] = d.split('@'); return { address: address!, driver: driver ?? 'vfio-pci' }; }),
  };
}

export function replayRaw(text: string, host: { hostname: string; bootId: string }): { batches: EventBatch[]; header: RawHeader; events: Event[] } {
  const lines = text.split('\n');
  const header = parseRawHeader(lines[0] ?? '');
  if (!header) throw new Error('not a revokescope raw capture (missing "# revokescope raw" header)');
  const profile = PROFILES.find((p) => p.id === header.profile);
  const events: Event[] = [];
  const firstTs = { v: Infinity };
  const decoder = new Decoder((e) => events.push(e), {
    memoryLockOffset: header.memoryLockOffset,
    knownDevice: (d) => header.devices.some((x) => x.address === d),
  });
  let lost = 0;
  for (const line of lines.slice(1)) {
    const r = header.backend === 'ftrace' ? parseTraceLine(line) : parseBpftraceLine(line);
    if (!r) continue;
    if ('lost' in r) { lost += r.lost; continue; }
    firstTs.v = Math.min(firstTs.v, r.hit.tsNs);
    decoder.hit(r.hit);
  }
  const seedTs = Number.isFinite(firstTs.v) ? firstTs.v - 1 : 0;
  const seed: Event[] = header.devices.map((d) => ({ tsNs: seedTs, device: d.address, comm: 'revokescope',
    deviceInfo: { driver: d.driver, zapBarsOnRevoke: true, dmabufBarMmap: profile?.dmabufBarMmap ?? false } }));
  const caps = [...new Set([Capability.DEVICE_INFO, ...(profile?.probes.map((p) => p.capability) ?? [])])].sort((a, b) => a - b);
  const all = [...seed, ...events];
  const batch: EventBatch = { host: { ...host, kernelRelease: header.kernel, collectorVersion: 'replay', capabilities: caps }, firstSeq: 1, dropped: lost, events: all };
  return { batches: [batch], header, events: all };
}
