// From kernel facts to an attach plan: pick the profile of this kernel's era, choose the symbol each probe
// attaches to, resolve struct offsets through BTF, pick the in-kernel filter, and say what is missing
// and what that costs in findings. Pure: the same facts give the same plan (tests use recorded facts).
import { Capability } from '../../services/core/model.js';
import type { KernelFacts } from './kernel.js';
import { moduleTextRange } from './kernel.js';
import { CALLSITE_MODULE, DECODER_OFFSETS, DECODER_SYMBOLS, PROFILES, type Expr, type ArgType, type ProbeProfile, type ProbeSpec } from './profiles.js';

export type Width = 64 | 32 | 16 | 8;
/** A resolved fetch: a register, or *(base + offset) of `width` bits, optionally a bitfield of it. */
export type RExpr = { arg: number } | { ret: true } | { caller: true } | { load: RExpr; offset: number; width: Width; bit?: { shift: number; size: number } };
/** The resolved argument's type: 'flag' became a u8 (bool member) or a bitfield load. */
export interface ResolvedArg { name: string; expr: RExpr; type: Exclude<ArgType, 'flag'>; afterFilter: boolean }
export type RFilter = { arg: string; eq: bigint[] } | { arg: string; range: [bigint, bigint] } | { retRange: [bigint, bigint] } | { self: true };

export interface PlannedProbe {
  spec: ProbeSpec;
  /** Where it attaches: a function, or "function+0xoffset" for a call site. */
  symbol: string;
  module: string;
  args: ResolvedArg[];
  filter: RFilter[];
  /** Arguments dropped because their offsets are unknown (no BTF). */
  dropped: string[];
  /** The backend's event name: the spec id, or "<id>__<n>" for the n-th call site of a callsite spec. */
  event: string;
  /** A call-site probe: on the call instruction, or on the next one (the callee returned; its value in %ax). */
  at?: 'call' | 'next';
}

/** Probes whose hits carry a kernel stack with `collect --stacks`: the revoke steps (the lock taken for write, a zap,
 * a DMABUF revoke) and the faults a FAULT_WHILE_REVOKED rests on. The stack is taken at entry: the code path that
 * called down_write / unmap_mapping_range / vfio_pci_dma_buf_move (the ioctl, config write or PM path). */
export const STACK_ROLES: ReadonlySet<string> = new Set(['lock', 'lock_try', 'zap', 'zap_vma', 'dmabuf_move', 'fault']);
export const takesStack = (p: PlannedProbe): boolean => STACK_ROLES.has(p.spec.role);

/** The spec id of a backend event name ("lock__3" -> "lock"). */
export const specIdOf = (event: string): string => { const i = event.indexOf('__'); return i < 0 ? event : event.slice(0, i); };
export interface MissingProbe { spec: ProbeSpec; reason: string }

export interface Plan {
  profile: ProbeProfile;
  kernelRelease: string;
  btf: boolean;
  attach: PlannedProbe[];
  missing: MissingProbe[];
  capabilities: Capability[];
  /** offsetof(struct vfio_pci_core_device, memory_lock): turns a semaphore back into its vdev. */
  memoryLockOffset?: number;
  /** DECODER_OFFSETS resolved through BTF (list heads the decoder compares pointers with). */
  offsets: Record<string, number>;
  /** DECODER_SYMBOLS' addresses (what the decoder compares fetched pointers with). */
  symbolAddresses: Record<string, bigint>;
  warnings: string[];
}

const has = (facts: KernelFacts, name: string | RegExp): boolean =>
  typeof name === 'string' ? facts.symbols.has(name) : [...facts.symbols.keys()].some((k) => name.test(k));

export function selectProfile(facts: KernelFacts, profiles: ProbeProfile[] = PROFILES): ProbeProfile | undefined {
  return profiles.find((p) =>
    (p.match.all ?? []).every((s) => has(facts, s)) &&
    (!p.match.any || p.match.any.some((s) => has(facts, s))) &&
    !(p.match.none ?? []).some((s) => has(facts, s)));
}

const WIDTH: Record<Exclude<ArgType, 'flag' | 'string'>, Width> = { u64: 64, u32: 32, u16: 16, u8: 8 };

/** Resolve an expression; `type` gives the width of the outermost load (inner loads are pointers). */
function resolveExpr(e: Expr, facts: KernelFacts, type: ArgType = 'u64'): { expr: RExpr; type: ResolvedArg['type'] } | undefined {
  const plain = type === 'flag' ? 'u8' : type;
  if ('arg' in e) return { expr: { arg: e.arg }, type: plain };
  if ('ret' in e) return { expr: { ret: true }, type: plain };
  if ('caller' in e) return { expr: { caller: true }, type: plain };
  const base = resolveExpr(e.load, facts);
  if (!base || !facts.btf) return undefined;
  let offset = 0;
  let bit: { bitOffset: number; bitSize: number } | undefined;
  for (const [i, f] of e.fields.entries()) {
    if (typeof f === 'number') { offset += f; continue; }
    const neg = f.startsWith('-');
    const path = neg ? f.slice(1) : f;
    const last = i === e.fields.length - 1 && !neg;
    if (last && type === 'flag' && facts.btf.bitsOf) {
      const b = facts.btf.bitsOf(path);
      if (!b) return undefined;
      if (b.bitSize > 0) { bit = b; continue; }
      offset += b.bitOffset >>> 3;
      continue;
    }
    const o = facts.btf.offsetOf(path);
    if (o === undefined) return undefined;
    offset += neg ? -o : o;
  }
  if (bit) {
    // a bitfield: load the aligned 32-bit (or 64-bit, when it straddles) word that holds it
    const abs = offset * 8 + bit.bitOffset;
    const wide = (abs % 32) + bit.bitSize > 32;
    const unit = wide ? 64 : 32;
    const word = Math.floor(abs / unit) * (unit / 8);
    return { expr: { load: base.expr, offset: word, width: unit, bit: { shift: abs - word * 8, size: bit.bitSize } }, type: 'u32' };
  }
  if (plain === 'string') return { expr: { load: base.expr, offset, width: 64 }, type: 'string' };
  return { expr: { load: base.expr, offset, width: WIDTH[plain] }, type: plain };
}

function traceable(facts: KernelFacts, symbol: string): boolean {
  const s = facts.symbols.get(symbol);
  if (!s || !/^[tT]$/.test(s.type)) return false;
  return facts.traceable ? facts.traceable.has(symbol) : true;
}

export function makePlan(facts: KernelFacts, profile = selectProfile(facts)): Plan {
  if (!profile) {
    const loaded = [...facts.symbols.values()].some((s) => s.module === 'vfio_pci_core');
    throw new Error(loaded ? 'no probe profile matches this kernel\'s vfio-pci symbols'
      : 'vfio_pci_core is not loaded (no vfio-pci symbols in /proc/kallsyms): load vfio-pci first');
  }
  const attach: PlannedProbe[] = [], missing: MissingProbe[] = [], warnings: string[] = [];
  for (const spec of profile.probes) {
    const symbol = spec.symbols.find((s) => traceable(facts, s));
    if (!symbol) {
      const present = spec.symbols.filter((s) => facts.symbols.has(s));
      missing.push({ spec, reason: present.length ? `${present.join('/')} not traceable (notrace or inlined callers only)` : `${spec.symbols.join('/')} absent (inlined or not in this kernel)` });
      continue;
    }
    const args: ResolvedArg[] = [], dropped: string[] = [];
    for (const a of spec.args) {
      const r = resolveExpr(a.expr, facts, a.type);
      if (r) args.push({ name: a.name, expr: r.expr, type: r.type, afterFilter: a.afterFilter ?? false }); else dropped.push(a.name);
    }
    let filter: RFilter[] | undefined;
    for (const set of spec.filters) {
      const out: RFilter[] = [];
      let ok = true;
      for (const f of set) {
        if ('self' in f) { out.push({ self: true }); continue; }
        if ('retInModule' in f) {
          const r = moduleTextRange(facts.symbols, f.retInModule);
          if (!r || !facts.addressesKnown) { ok = false; break; }
          out.push({ retRange: [r.lo, r.hi] });
        } else if ('inModule' in f) {
          const r = moduleTextRange(facts.symbols, f.inModule);
          if (!r || !facts.addressesKnown || !args.some((x) => x.name === f.arg)) { ok = false; break; }
          out.push({ arg: f.arg, range: [r.lo, r.hi] });
        } else {
          if (!args.some((x) => x.name === f.arg)) { ok = false; break; }
          const values: bigint[] = [];
          for (const v of f.eq) {
            if (typeof v === 'bigint') values.push(v);
            else { const s = facts.symbols.get(v.symbol); if (s && s.address !== 0n) values.push(s.address); }
          }
          if (!values.length) { ok = false; break; }
          out.push({ arg: f.arg, eq: values });
        }
      }
      if (ok) { filter = out; break; }
    }
    if (!filter) { missing.push({ spec, reason: 'no in-kernel filter can be built (needs BTF or kernel addresses)' }); continue; }
    const sites = spec.callsite ? facts.callSites?.filter((c) => c.callee === symbol) : undefined;
    if (sites?.length) {
      // the call sites are vfio-pci-core's by construction: the caller filters (and the caller argument) go. An
      // entry probe sits on each call (or tail-call jmp), a return probe on each place the callee returns to.
      const siteFilter = filter.filter((f) => !('retRange' in f) && !('range' in f && f.arg === 'caller'));
      const siteArgs = args.filter((a) => a.name !== 'caller');
      const points = spec.kind === 'entry' ? sites.map((c) => c.call)
        : [...new Map(sites.flatMap((c) => c.returns).map((r) => [r.address, r])).values()];
      points.forEach((c, i) => attach.push({ spec, symbol: `${c.func}+0x${c.offset.toString(16)}`, module: CALLSITE_MODULE, args: siteArgs,
        filter: siteFilter, dropped, event: `${spec.id}__${i}`, at: spec.kind === 'entry' ? 'call' : 'next' }));
      if (!points.length) missing.push({ spec, reason: `${symbol} is only tail-called from exported vfio-pci-core functions: its returns are outside the module` });
      continue;
    }
    attach.push({ spec, symbol, module: facts.symbols.get(symbol)!.module, args, filter, dropped, event: spec.id });
  }
  const caps = new Set<Capability>([Capability.DEVICE_INFO]);
  for (const cap of new Set(profile.probes.map((p) => p.capability))) {
    const required = profile.probes.filter((p) => p.capability === cap && !p.optional);
    const attachedIds = new Set(attach.map((p) => p.spec.id));
    const any = attach.some((p) => p.spec.capability === cap);
    if (any && required.every((p) => attachedIds.has(p.id))) caps.add(cap);
  }
  if (reportsTriggerEnds(profile.probes, new Set(attach.map((p) => p.spec.id)))) caps.add(Capability.TRIGGER_END);
  if (!facts.btf) warnings.push('no BTF: device names, had_vmas and the vfio-inode filter are unavailable');
  if (!facts.callSites && profile.probes.some((p) => p.callsite))
    warnings.push(`no call sites (${facts.callSitesError ?? 'not read'}): lock, zap and reset probes sit on the host-wide functions and filter by caller`);
  const memoryLockOffset = facts.btf?.offsetOf('vfio_pci_core_device.memory_lock');
  const offsets: Record<string, number> = {};
  for (const path of DECODER_OFFSETS) { const o = facts.btf?.offsetOf(path); if (o !== undefined) offsets[path] = o; }
  const symbolAddresses: Record<string, bigint> = {};
  for (const name of DECODER_SYMBOLS) { const s = facts.symbols.get(name); if (s && s.address !== 0n) symbolAddresses[name] = s.address; }
  return { profile, kernelRelease: facts.release, btf: !!facts.btf, attach, missing, capabilities: [...caps].sort((a, b) => a - b),
    memoryLockOffset, offsets, symbolAddresses, warnings };
}

/** Capability.TRIGGER_END ("a trigger without its TriggerEnd has not returned"): every trigger probe attached has
 * its return probe attached too (`<id>_ret`). */
export function reportsTriggerEnds(probes: readonly ProbeSpec[], attached: ReadonlySet<string>): boolean {
  const triggers = probes.filter((p) => p.role.startsWith('trigger_') && p.role !== 'trigger_ret' && attached.has(p.id));
  return triggers.length > 0 && triggers.every((p) => attached.has(`${p.id}_ret`));
}

/** The --dry-run text: what attaches where, what is missing and what that costs. */
export function describePlan(plan: Plan, backend: string): string {
  const capName = (c: Capability) => Capability[c];
  const lines = [`kernel ${plan.kernelRelease}: profile ${plan.profile.id} — ${plan.profile.era}`,
    `backend ${backend}; BTF ${plan.btf ? 'yes' : 'no'}; capabilities: ${plan.capabilities.map(capName).join(', ')}`, '', 'attach:'];
  for (const p of plan.attach) {
    const f = p.filter.map((x) => 'self' in x ? 'only the agent\'s own task' : 'retRange' in x ? `caller in [${hex(x.retRange[0])},${hex(x.retRange[1])})`
      : 'range' in x ? `${x.arg} in [${hex(x.range[0])},${hex(x.range[1])})` : `${x.arg} == ${x.eq.map(hex).join('|')}`).join(' && ');
    const how = p.at ? (p.at === 'call' ? 'call site' : 'after call') : p.spec.kind === 'entry' ? 'kprobe   ' : 'kretprobe';
    lines.push(`  ${p.event.padEnd(15)} ${how} ${p.symbol}${p.module ? ` [${p.module}]` : ''}` +
      `  args(${p.args.map((a) => a.name).join(',')})${f ? `  filter: ${f}` : ''}${p.dropped.length ? `  (not in this kernel's BTF: ${p.dropped.join(',')})` : ''}`);
  }
  lines.push('', 'missing:');
  if (!plan.missing.length) lines.push('  (none)');
  for (const m of plan.missing) lines.push(`  ${m.spec.id.padEnd(15)} ${m.reason}${m.spec.optional ? ' [optional]' : ''}\n  ${''.padEnd(15)} cost: ${m.spec.cost}`);
  const lost = Object.values(Capability).filter((c): c is Capability => typeof c === 'number' && c !== 0 && !plan.capabilities.includes(c) &&
    plan.profile.probes.some((p) => p.capability === c));
  if (lost.length) lines.push('', `capabilities not attached: ${lost.map(capName).join(', ')}`);
  for (const n of [...plan.profile.notes, ...plan.warnings]) lines.push(`note: ${n}`);
  return lines.join('\n');
}

const hex = (v: bigint) => '0x' + v.toString(16);
