// The collector agent (docs/design.md §7): plan probes for this kernel, attach a backend, seed DeviceInfo and
// mapping snapshots, decode hits into numbered events, batch them into EventBatches and hand them to a sink.
import { closeSync, openSync, readFileSync, readlinkSync, writeSync } from 'node:fs';
import { basename } from 'node:path';
import { hostname } from 'node:os';
import { Capability, v1, type Cgroup, type Event, type EventBatch, type HostInfo, type KernelStack } from '../../services/core/model.js';
import type { EventSink } from '../../services/transport/types.js';
import { openTraceWriter } from '../../services/trace/index.js';
import { readKernelFacts, tracefsRoot, type KernelFacts } from '../probes/kernel.js';
import { describePlan, makePlan, reportsTriggerEnds, type Plan, type PlannedProbe } from '../probes/plan.js';
import { FtraceSession } from '../ftrace/tracefs.js';
import { BpftraceSession } from '../bpftrace/session.js';
import { Decoder } from './decoder.js';
import { EventScreen } from './screen.js';
import { listVfioDevices, snapshotMappings, type VfioDevice } from './devices.js';
import type { ProbeHit } from '../probes/hit.js';
import { symbolizer } from '../probes/kernel.js';
import { backingByProbe } from '../probes/profiles.js';
import type { revokescope } from '../../gen/proto.js';
import type { CollectorOutput } from './spool-output.js';
import { CgroupTable } from './cgroups.js';
import { takesStack } from '../probes/plan.js';
import { addLost, MAX_LOST } from '../probes/lost.js';

export type BackendName = 'ftrace' | 'bpftrace';

export interface Backend {
  attach(): Promise<{ attached: PlannedProbe[]; failed: { probe: PlannedProbe; error: string }[] }>;
  poll(onHit: (h: ProbeHit) => void): number;
  /** Events the backend knows were lost so far (ring/perf buffer overruns). */
  lost(): number;
  detach(onHit: (h: ProbeHit) => void): Promise<void>;
}

/** Where batches go: a trace file, or a transport (in-process bus, Kafka) through EventSink. */
export interface BatchSink { write(batch: EventBatch): Promise<void>; close(): Promise<void> }

export function fileSink(path: string): BatchSink {
  const w = openTraceWriter(path);
  return { write: (b) => w.write(b), close: () => w.close() };
}

export function transportSink(sink: EventSink): BatchSink {
  return {
    write: (b) => sink.send([{ key: b.host?.hostname ?? '', value: v1.EventBatch.encode(b as revokescope.v1.IEventBatch).finish() }]),
    close: () => sink.close(),
  };
}

export const monoNs = (): number => Number(process.hrtime.bigint());   // CLOCK_MONOTONIC on Linux

/** First sequence number of this agent run: CLOCK_MONOTONIC in µs at start. Seq numbers are per (host, boot);
 * a restarted agent must not reuse its predecessor's numbers (stored events are keyed by hostname, boot_id, seq
 * and the correlator drops seqs it has seen as duplicates). A run uses one number per event, fewer than one per
 * µs, so the next run starts past it; the jump reads as a gap, i.e. loss, which is what an agent restart is. */
export const firstSeqOfRun = (): number => Math.floor(monoNs() / 1000);

export interface AgentStats {
  hits: number; events: number; batches: number; heartbeats: number;
  /** Events reported lost in the batches' `dropped`: the backend's overruns plus `invalid`. */
  dropped: number;
  /** Decoded events the readers' per-event rules refuse (EventScreen): not sent, counted in `dropped`. */
  invalid: number;
  /** Why the first of them was refused (later ones are only counted). */
  invalidFirstReason?: string;
  unattributed: number; unpaired: number;
  snapshots: number; beforeFirstAcquire: number; attachMs: number; startNs: number; stopNs: number; maxLagMs: number;
}

export interface AgentOptions {
  backend: BackendName;
  /** First sequence number (default: firstSeqOfRun()). */
  firstSeq?: number;
  /** Where batches go (trace file, in-process transport). Ignored when `output` is given. */
  sink?: BatchSink;
  /** Fleet mode: a CollectorOutput (Kafka + disk spool) made for this host once the probes are attached; it
   * numbers and cuts the batches, routes them to Kafka or the spool and accounts for what fits nowhere. */
  output?: (host: HostInfo) => CollectorOutput;
  facts?: KernelFacts;
  plan?: Plan;
  durationMs?: number;
  batchMaxEvents?: number;
  flushMs?: number;
  /** An empty batch (a heartbeat: EventBatch.now_ns advances host time) after this long without one. Default 1000. */
  heartbeatMs?: number;
  pollMs?: number;
  collectorVersion?: string;
  bpftracePath?: string;
  /** How long bpftrace may take to compile and attach its program (default 120 s). */
  attachTimeoutMs?: number;
  /** The environment bpftrace runs with (the command's; BPFTRACE_* settings pass through). Default: none but ours. */
  env?: NodeJS.ProcessEnv;
  log?: (line: string) => void;
  /** Resolves when the agent should stop (signal, test). */
  stop?: Promise<void>;
  onReady?: (plan: Plan) => void;
  /** Also write the backend's raw text lines here (parser fixtures). */
  rawOut?: string;
  /** A backend made elsewhere (tests); default: makeBackend(backend, plan). */
  backendInstance?: Backend;
  /** The vfio devices (tests); default: listVfioDevices() from sysfs. */
  devices?: VfioDevice[];
  /** Kernel stacks on the revoke steps' hits (plan.ts STACK_ROLES; `collect --stacks`). Default false. */
  stacks?: boolean;
  /** The boot's cgroup table (tests); default: one over this host's cgroup2 mount and /proc. */
  cgroups?: CgroupTable;
}

function bootId(): string {
  try { return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim(); } catch { return 'unknown'; }
}

export function makeBackend(name: BackendName, plan: Plan, bpftracePath?: string, tee?: (line: string) => void, attachTimeoutMs?: number,
  env?: NodeJS.ProcessEnv, stacks = false): Backend {
  if (name === 'bpftrace') { const b = new BpftraceSession(plan, bpftracePath, attachTimeoutMs, env, stacks); b.tee = tee; return b; }
  const root = tracefsRoot();
  if (!root) throw new Error('tracefs is not mounted (mount -t tracefs tracefs /sys/kernel/tracing)');
  const s = new FtraceSession(root, plan, undefined, stacks);
  s.tee = tee;
  return {
    attach: async () => s.attach(),
    poll: (f) => s.poll(f),
    lost: () => addLost(s.lost, s.overruns()),
    detach: async (f) => s.detach(f),
  };
}

/** First line of a raw capture: what replay needs to decode it like the live agent did. Later comment lines:
 * "# symbol <address> <module:name>" (an address the agent symbolized), "# deviceinfo <dev> <ts>" (a DeviceInfo
 * without kernel state the agent emitted because no snapshot could be read), "# cgroup <id> <path> [<pod name>]" (an
 * entry of the boot's cgroup table), "# cgroup-of <tid> <id>" (the cgroup the agent read for an ftrace task). */
export function rawHeader(plan: Plan, backend: BackendName, devices: VfioDevice[], stacks = false): string {
  return `# revokescope raw backend=${backend} profile=${plan.profile.id} kernel=${plan.kernelRelease}` +
    ` capabilities=${plan.capabilities.map((c) => Capability[c]).join(',')}` +
    ` memory_lock_offset=${plan.memoryLockOffset ?? ''} devices=${devices.map((d) => `${d.address}@${d.driver}`).join(',')}` +
    ` offsets=${Object.entries(plan.offsets).map(([k, v]) => `${k}@${v}`).join(',')}` +
    ` symbols=${Object.entries(plan.symbolAddresses).map(([k, v]) => `${k}@0x${v.toString(16)}`).join(',')}` +
    ` stacks=${stacks ? [...new Set(plan.attach.filter(takesStack).map((p) => p.spec.id))].join(',') : ''}`;
}

/** The sysfs attribute whose show function each snapshot symbol is. */
const SNAPSHOT_ATTR: Record<string, string> = { d3cold_allowed_show: 'd3cold_allowed', reset_method_show: 'reset_method' };

/** Ask the kernel for a DeviceInfo snapshot of a device: reading its sysfs attribute runs the show function the
 * snapshot probe (filtered to our own task) sits on, which reads the vdev through BTF. Only for devices still
 * bound to the vfio driver we listed (the probe dereferences driver_data as a vdev). */
export function requestSnapshot(d: VfioDevice, symbol: string, sysfs = '/sys'): boolean {
  const dir = `${sysfs}/bus/pci/devices/${d.address}`;
  try {
    if (basename(readlinkSync(`${dir}/driver`)) !== d.driver) return false;
    readFileSync(`${dir}/${SNAPSHOT_ATTR[symbol] ?? 'd3cold_allowed'}`);
    return true;
  } catch { return false; }
}

export async function runAgent(opts: AgentOptions): Promise<AgentStats> {
  const log = opts.log ?? ((l: string) => process.stderr.write(l + '\n'));
  const facts = opts.facts ?? readKernelFacts();
  const plan = opts.plan ?? makePlan(facts);
  log(describePlan(plan, opts.backend));
  let devices: VfioDevice[] = opts.devices ?? listVfioDevices();
  const known = new Set(devices.map((d) => d.address));
  const stats: AgentStats = { hits: 0, events: 0, batches: 0, heartbeats: 0, dropped: 0, invalid: 0, unattributed: 0, unpaired: 0, snapshots: 0, beforeFirstAcquire: 0,
    attachMs: 0, startNs: monoNs(), stopNs: 0, maxLagMs: 0 };

  const queue: Event[] = [];
  let seq = opts.firstSeq ?? firstSeqOfRun();
  let droppedReported = 0;
  const host = (): HostInfo => ({ hostname: hostname(), bootId: bootId(), kernelRelease: facts.release,
    collectorVersion: opts.collectorVersion ?? '0.1.0', capabilities: caps });
  let caps: Capability[] = plan.capabilities;

  const raw = opts.rawOut ? openSync(opts.rawOut, 'w') : undefined;
  const rawLine = (l: string) => { if (raw !== undefined) writeSync(raw, l + '\n'); };
  // the snapshot probe's symbol, once it is attached
  // eslint-disable-next-line prefer-const -- set once the probes are attached (below); the closures here read it
  let snapshotSymbol: string | undefined;
  const lastSnapshot = new Map<string, number>();
  const snapshotWanted = new Set<string>();
  /** DeviceInfo of a device: a kernel snapshot when the probe is attached, else driver and era only. */
  const newDevice = (address: string, ts: number) => {
    const d = devices.find((x) => x.address === address);
    if (snapshotSymbol && d && requestSnapshot(d, snapshotSymbol)) { lastSnapshot.set(address, monoNs()); return; }
    queue.push(decoder.bareDeviceInfo(address, ts));
    rawLine(`# deviceinfo ${address} ${ts}`);
  };
  const knownDevice = (dev: string): boolean => {
    if (known.has(dev)) return true;
    if (!opts.devices) devices = listVfioDevices();    // bound after start?
    if (!devices.some((d) => d.address === dev)) return false;
    known.add(dev); newDevice(dev, monoNs());
    return true;
  };
  const symbolize = symbolizer();
  const symbolized = new Set<bigint>();
  // the boot's cgroup table: ftrace hits carry no cgroup, the agent reads the task's; bpftrace's come from the kernel
  const cgroups = opts.cgroups ?? new CgroupTable({
    onEntry: (c) => rawLine(`# cgroup ${c.id} ${c.path}${c.podName ? ` ${c.podName}` : ''}`),
    onTask: (tid, id) => rawLine(`# cgroup-of ${tid} ${id}`),
  });
  const decoder = new Decoder((ev) => {
    if (!ev.cgroupId && ev.tid && opts.backend === 'ftrace') { const id = cgroups.ofTask(ev.pid ?? ev.tid, ev.tid); if (id) ev.cgroupId = id; }
    if (ev.cgroupId) cgroups.note(Number(ev.cgroupId), ev.pid ?? undefined, ev.tid ?? undefined);
    queue.push(ev);
    // state may have changed with the episode or trigger: ask for a fresh snapshot (sent only if it differs)
    if (snapshotSymbol && ev.device && (ev.lockRelease || ev.triggerEnd)) snapshotWanted.add(ev.device);
  }, {
    memoryLockOffset: plan.memoryLockOffset, offsets: plan.offsets, symbols: plan.symbolAddresses, knownDevice,
    soleDevice: () => (plan.btf ? undefined : devices.length === 1 ? devices[0]!.address : undefined),
    symbolize: (addr) => {
      const name = symbolize(addr);
      if (name && !symbolized.has(addr)) { symbolized.add(addr); rawLine(`# symbol 0x${addr.toString(16)} ${name}`); }
      return name;
    },
    backingOf: backingByProbe(plan.profile), dmabufBarMmap: plan.profile.dmabufBarMmap,
    driverOf: (dev) => devices.find((d) => d.address === dev)?.driver ?? 'vfio-pci',
    // bpftrace's probes go live one after the other, some after its BEGIN (seen in the lab: unlocks and zaps of a
    // device for seconds before its first lock event)
    untilFirstAcquire: opts.backend === 'bpftrace',
  });
  const onHit = (h: ProbeHit) => { stats.hits++; decoder.hit(h); };

  rawLine(rawHeader(plan, opts.backend, devices, opts.stacks));
  const backend = opts.backendInstance ?? makeBackend(opts.backend, plan, opts.bpftracePath, raw === undefined ? undefined : (l) => writeSync(raw, l + '\n'),
    opts.attachTimeoutMs, opts.env, opts.stacks);
  const t0 = monoNs();
  const res = await backend.attach();
  stats.attachMs = (monoNs() - t0) / 1e6;
  for (const f of res.failed) log(`collect: probe ${f.probe.spec.id} (${f.probe.symbol}) failed to attach: ${f.error}`);
  if (res.failed.length) {
    // Degrade: a capability whose required probe failed is not claimed.
    // a spec with call sites counts only when every one of its sites attached
    const failedIds = new Set(res.failed.map((f) => f.probe.spec.id));
    const ok = new Set(res.attached.map((p) => p.spec.id).filter((id) => !failedIds.has(id)));
    caps = caps.filter((c) => c === Capability.DEVICE_INFO || (c === Capability.TRIGGER_END ? reportsTriggerEnds(plan.profile.probes, ok)
      : plan.profile.probes.filter((p) => p.capability === c && !p.optional).every((p) => ok.has(p.id))));
  }
  if (!res.attached.length) throw new Error('no probe could be attached');
  snapshotSymbol = res.attached.find((p) => p.spec.role === 'snapshot')?.symbol;

  // Seed: every vfio device's DeviceInfo (a kernel snapshot, read now that the probes are attached) and the BAR
  // mappings that already exist (after attaching, so none falls between).
  const seedTs = monoNs();
  for (const d of devices) newDevice(d.address, seedTs);
  if (snapshotSymbol) {
    // wait (briefly) for the snapshots to come through the backend; a device whose snapshot does not arrive
    // gets a DeviceInfo without kernel state
    // (bpftrace may hand them over up to its reorder window late, behind a backlog of other hits)
    const until = monoNs() + 10e9;
    while (devices.some((d) => lastSnapshot.has(d.address) && !decoder.snapshotted(d.address)) && monoNs() < until) {
      backend.poll(onHit);
      await new Promise((r) => setTimeout(r, 20));
    }
    for (const d of devices) if (lastSnapshot.has(d.address) && !decoder.snapshotted(d.address)) {
      log(`collect: no DeviceInfo snapshot arrived for ${d.address}: its state is unknown`);
      queue.push(decoder.bareDeviceInfo(d.address, seedTs));
      rawLine(`# deviceinfo ${d.address} ${seedTs}`);
    }
  }
  const snap = opts.devices ? { mappings: [], ambiguous: 0 } : snapshotMappings(devices);
  // ftrace: the cgroups of the tasks that map vfio BARs now are read now (their hits may be read after they exit)
  if (opts.backend === 'ftrace') for (const pid of new Set(snap.mappings.map((m) => m.pid))) cgroups.ofProcess(pid);
  for (const m of snap.mappings) {
    decoder.noteMapping(m.device, m.mappingId, m.bar);
    queue.push({ tsNs: seedTs, pid: m.pid, device: m.device, comm: 'revokescope',
      barMmap: { bar: m.bar, backing: plan.profile.snapshotBacking, mappingId: m.mappingId, length: m.length, snapshot: true } });
  }
  if (snap.ambiguous) log(`collect: ${snap.ambiguous} vfio mappings could not be attributed to one device`);
  log(`collect: ${opts.backend} attached ${res.attached.length}/${plan.attach.length} probes in ${stats.attachMs.toFixed(0)} ms (profile ${plan.profile.id}, ${devices.length} vfio devices, ${snap.mappings.length} live mappings)`);
  opts.onReady?.(plan);

  if (!opts.output && !opts.sink) throw new Error('runAgent needs a sink or an output');
  const output = opts.output?.(host());
  const batchMax = opts.batchMaxEvents ?? 512;
  const heartbeatNs = (opts.heartbeatMs ?? 1000) * 1e6;
  let lastSent = monoNs();
  // every event passes here before batching: decoded hits, DeviceInfo seeds, mapping snapshots
  const screen = new EventScreen();
  /** Send what is queued; with nothing queued, an empty batch (heartbeat) once heartbeatMs passed without one. */
  const flush = async (force: boolean) => {
    const lostNow = backend.lost();
    let dropped = Math.min(lostNow - droppedReported, MAX_LOST);
    const now = monoNs();
    if (!queue.length && !(force && dropped > 0) && now - lastSent < heartbeatNs) return;
    lastSent = now;
    // the boot's new cgroup and stack table entries go with the first batch: every event queued names only entries
    // taken now or before
    let lookups: { cgroups?: Cgroup[]; stacks?: KernelStack[] } | undefined = { cgroups: cgroups.take(), stacks: decoder.takeStacks() };
    if (!lookups.cgroups!.length) delete lookups.cgroups;
    if (!lookups.stacks!.length) delete lookups.stacks;
    do {
      const screened = screen.keep(queue.splice(0, batchMax));
      const events = screened.events;
      if (screened.rejected) {
        if (screen.rejected === screened.rejected) log(`collect: a decoded event the readers would refuse is not sent, counted as dropped: ${screen.firstReason!}`);
        dropped = addLost(dropped, screened.rejected);
      }
      const nowNs = monoNs();
      if (!events.length) stats.heartbeats++;
      const extra = lookups ?? {};
      lookups = undefined;
      if (output) output.push(events, dropped, nowNs, extra);   // never blocks: sends, spools or counts into a later `dropped`
      else {
        const batch: EventBatch = { host: host(), firstSeq: seq, dropped, events, nowNs, ...extra };
        seq += events.length;
        await opts.sink!.write(batch);
      }
      dropped = 0; droppedReported = lostNow;
      stats.batches++; stats.events += events.length;
      const newest = events.reduce((m, e) => Math.max(m, Number(e.tsNs ?? 0)), 0);
      if (newest) stats.maxLagMs = Math.max(stats.maxLagMs, (nowNs - newest) / 1e6);
    } while (queue.length);
  };
  /** Re-read the snapshot of devices whose state may have changed (at most every 250 ms per device). */
  const resnapshot = () => {
    if (!snapshotWanted.size) return;
    const now = monoNs();
    for (const dev of snapshotWanted) {
      if (now - (lastSnapshot.get(dev) ?? 0) < 250e6) continue;
      snapshotWanted.delete(dev);
      const d = devices.find((x) => x.address === dev);
      if (d && requestSnapshot(d, snapshotSymbol!)) lastSnapshot.set(dev, now);
    }
  };

  let stopping = false;
  const stopPromise = (opts.stop ?? new Promise<void>(() => {})).then(() => { stopping = true; });
  const deadline = opts.durationMs ? monoNs() + opts.durationMs * 1e6 : Infinity;
  let lastFlush = monoNs();
  const pollMs = opts.pollMs ?? 50, flushMs = opts.flushMs ?? 250;
  while (!stopping && monoNs() < deadline) {
    backend.poll(onHit);
    resnapshot();
    if (queue.length >= batchMax || monoNs() - lastFlush >= flushMs * 1e6) { await flush(false); lastFlush = monoNs(); }
    await Promise.race([new Promise((r) => setTimeout(r, pollMs)), stopPromise]);
  }
  backend.poll(onHit);
  await backend.detach(onHit);
  await flush(true);
  if (output) await output.close(); else await opts.sink!.close();
  if (raw !== undefined) closeSync(raw);
  stats.stopNs = monoNs();
  stats.dropped = droppedReported + screen.rejected;
  stats.invalid = screen.rejected;
  if (screen.firstReason !== undefined) stats.invalidFirstReason = screen.firstReason;
  Object.assign(stats, { unattributed: decoder.stats.unattributed, unpaired: decoder.stats.unpaired, snapshots: decoder.stats.snapshots,
    beforeFirstAcquire: decoder.stats.beforeFirstAcquire });
  return stats;
}
