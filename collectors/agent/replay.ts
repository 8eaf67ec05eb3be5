// Raw captures (trace_pipe text or bpftrace output, as written by `collect --raw`) -> EventBatches,
// through the same decoder as the live agent. Used for fixtures and to analyze raw ftrace text.
import { Capability, type Cgroup, type Event, type EventBatch } from '../../services/core/model.js';
import { PROFILES, backingByProbe } from '../probes/profiles.js';
import { TraceReader } from '../ftrace/parse.js';
import { BpftraceReader } from '../bpftrace/parse.js';
import { Decoder } from './decoder.js';
import { EventScreen } from './screen.js';
import type { ProbeHit } from '../probes/hit.js';
import { addLost } from '../probes/lost.js';

export interface RawHeader {
  backend: 'ftrace' | 'bpftrace'; profile: string; kernel: string; memoryLockOffset?: number;
  devices: { address: string; driver: string }[];
  /** Struct offsets and symbol addresses the live decoder used (captures before these existed have none). */
  offsets: Record<string, number>; symbols: Record<string, bigint>;
  /** The capabilities the agent planned (captures before the header carried them: undefined). */
  capabilities?: Capability[];
  /** Probes (spec ids) whose hits carried kernel stacks (collect --stacks; none in older captures). */
  stacks: string[];
}

const pairs = (v: string | undefined): [string, string][] =>
  (v ?? '').split(',').filter(Boolean).map((x) => { const i = x.lastIndexOf('@'); return [x.slice(0, i), x.slice(i + 1)]; });

/** A header value that must be a non-negative integer (decimal, or hex with 0x): else the header is bad. */
function headerInteger(key: string, v: string): number {
  if (!/^(\d{1,15}|0x[0-9a-f]{1,12})$/i.test(v)) throw new Error(`bad revokescope raw header: ${key} value ${JSON.stringify(v.slice(0, 40))} is not an integer`);
  return Number(v);
}
function headerAddress(key: string, v: string): bigint {
  if (!/^(\d{1,20}|0x[0-9a-f]{1,16})$/i.test(v)) throw new Error(`bad revokescope raw header: ${key} value ${JSON.stringify(v.slice(0, 40))} is not an address`);
  return BigInt(v);
}

/** The capture's header line; undefined when it is not one; throws (bad revokescope raw header: ...) on a header whose
 * numbers do not parse. */
export function parseRawHeader(line: string): RawHeader | undefined {
  if (!line.startsWith('# revokescope raw ')) return undefined;
  const kv = Object.fromEntries([...line.matchAll(/(\w+)=(\S*)/g)].map((m) => [m[1]!, m[2]!]));
  return {
    backend: kv.backend === 'bpftrace' ? 'bpftrace' : 'ftrace', profile: kv.profile ?? '', kernel: kv.kernel ?? '',
    memoryLockOffset: kv.memory_lock_offset ? headerInteger('memory_lock_offset', kv.memory_lock_offset) : undefined,
    devices: (kv.devices ?? '').split(',').filter(Boolean).map((d) => { const [address, driver] = d.split('@'); return { address: address!, driver: driver ?? 'vfio-pci' }; }),
    offsets: Object.fromEntries(pairs(kv.offsets).map(([k, v]) => [k, headerInteger(`offsets ${k}`, v)])),
    symbols: Object.fromEntries(pairs(kv.symbols).map(([k, v]) => [k, headerAddress(`symbols ${k}`, v)])),
    stacks: (kv.stacks ?? '').split(',').filter(Boolean),
    capabilities: kv.capabilities === undefined ? undefined
      : kv.capabilities.split(',').filter(Boolean).map((n) => Capability[n as keyof typeof Capability]).filter((c): c is Capability => typeof c === 'number'),
  };
}

/** The capture as one batch. `rejected`: decoded events the readers' per-event rules refuse (a damaged line), left
 * out of the batch and counted in its `dropped` as the live agent does (EventScreen); `firstReason`: the first one's. */
export function replayRaw(text: string, host: { hostname: string; bootId: string }):
  { batches: EventBatch[]; header: RawHeader; events: Event[]; rejected: number; firstReason: string | undefined } {
  const lines = text.split('\n');
  const header = parseRawHeader(lines[0] ?? '');
  if (!header) throw new Error('not a revokescope raw capture (missing "# revokescope raw" header)');
  const profile = PROFILES.find((p) => p.id === header.profile);
  const events: Event[] = [];
  const firstTs = { v: Infinity };
  const symbols = new Map<bigint, string>();
  // the agent's side notes: symbols it resolved, the boot's cgroup table, the cgroup it read for each ftrace task
  const cgroups: Cgroup[] = [];
  const taskCgroup = new Map<number, number>();
  for (const l of lines) {
    const m = /^# symbol 0x([0-9a-f]+) (\S+)/.exec(l);
    if (m) { symbols.set(BigInt('0x' + m[1]), m[2]!); continue; }
    const c = /^# cgroup (\d+) (\S+)(?: (\S+))?$/.exec(l);
    if (c) { cgroups.push({ id: Number(c[1]), path: c[2]!, ...(c[3] ? { podName: c[3] } : {}) }); continue; }
    const t = /^# cgroup-of (\d+) (\d+)$/.exec(l);
    if (t && !taskCgroup.has(Number(t[1]))) taskCgroup.set(Number(t[1]), Number(t[2]));
  }
  const decoder = new Decoder((e) => {
    // ftrace hits carry no cgroup: the one the agent read for the task (as live)
    if (!e.cgroupId && e.tid && taskCgroup.has(e.tid)) e.cgroupId = taskCgroup.get(e.tid);
    events.push(e);
  }, {
    memoryLockOffset: header.memoryLockOffset, offsets: header.offsets, symbols: header.symbols,
    knownDevice: (d) => header.devices.some((x) => x.address === d),
    symbolize: (a) => symbols.get(a), backingOf: profile ? backingByProbe(profile) : {},
    driverOf: (d) => header.devices.find((x) => x.address === d)?.driver ?? 'vfio-pci', dmabufBarMmap: profile?.dmabufBarMmap ?? false,
    untilFirstAcquire: header.backend === 'bpftrace',
  });
  let lost = 0, bareSeeds = false, readyTs = -Infinity;
  const hits: ProbeHit[] = [];
  const ftrace = new TraceReader(new Set(header.stacks));
  const bpf = new BpftraceReader();
  const take = (h: ProbeHit) => { firstTs.v = Math.min(firstTs.v, h.tsNs); hits.push(h); };
  for (const line of lines.slice(1)) {
    // bpftrace's BEGIN (all probes attached): hits before it came from a partly attached program (as live)
    const ready = /^RS_READY (\d+)/.exec(line);
    if (ready) { readyTs = Number(ready[1]); continue; }
    const seed = /^# deviceinfo (\S+) (\d+)/.exec(line);
    if (seed) { bareSeeds = true; events.push(decoder.bareDeviceInfo(seed[1]!, Number(seed[2]))); continue; }
    if (line.startsWith('# ')) continue;
    if (header.backend === 'ftrace') ftrace.line(line, take);
    else { const h = bpf.line(line); if (h) take(h); }
  }
  ftrace.flush(take);
  lost = addLost(lost, addLost(ftrace.lost, bpf.lost));
  // bpftrace prints per-CPU buffers as it reads them: in time order, as the live session hands them over
  if (header.backend === 'bpftrace') hits.sort((a, b) => a.tsNs - b.tsNs);
  for (const h of hits) if (h.tsNs >= readyTs) decoder.hit(h);
  // Captures from before DeviceInfo snapshots: a DeviceInfo without kernel state per device, before everything.
  const seedTs = Number.isFinite(firstTs.v) ? firstTs.v - 1 : 0;
  const seed: Event[] = bareSeeds ? [] : header.devices.filter((d) => !decoder.snapshotted(d.address)).map((d) => decoder.bareDeviceInfo(d.address, seedTs));
  // what the agent planned (captures from before the header named them: every capability of the profile's probes)
  const caps = header.capabilities ?? [...new Set([Capability.DEVICE_INFO, ...(profile?.probes.map((p) => p.capability) ?? [])])].sort((a, b) => a - b);
  const screen = new EventScreen();
  const { events: all, rejected } = screen.keep([...seed, ...events]);
  const stacks = decoder.takeStacks();
  const batch: EventBatch = { host: { ...host, kernelRelease: header.kernel, collectorVersion: 'replay', capabilities: caps }, firstSeq: 1,
    dropped: addLost(lost, rejected), events: all, ...(cgroups.length ? { cgroups } : {}), ...(stacks.length ? { stacks } : {}) };
  return { batches: [batch], header, events: all, rejected, firstReason: screen.firstReason };
}
