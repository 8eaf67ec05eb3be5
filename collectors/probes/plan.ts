// From kernel facts to an attach plan: pick the profile of this kernel's era, choose the symbol each probe
// attaches to, resolve struct offsets through BTF, pick the in-kernel filter, and say what is missing
// and what that costs in findings. Pure: the same facts give the same plan (tests use recorded facts).
import { Capability } from '../../services/core/model.js';
import type { KernelFacts } from './kernel.js';
import { moduleTextRange } from './kernel.js';
import { PROFILES, type Expr, type ArgType, type ProbeProfile, type ProbeSpec } from './profiles.js';

export type RExpr = { arg: number } | { ret: true } | { caller: true } | { load: RExpr; offset: number; width: 64 | 32 };
export interface ResolvedArg { name: string; expr: RExpr; type: ArgType; afterFilter: boolean }
export type RFilter = { arg: string; eq: bigint[] } | { arg: string; range: [bigint, bigint] } | { retRange: [bigint, bigint] };

export interface PlannedProbe {
  spec: ProbeSpec;
  symbol: string;
  module: string;
  args: ResolvedArg[];
  filter: RFilter[];
  /** Arguments dropped because their offsets are unknown (no BTF). */
  dropped: string[];
}
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

function resolveExpr(e: Expr, facts: KernelFacts): RExpr | undefined {
  if ('arg' in e) return { arg: e.arg };
  if ('ret' in e) return { ret: true };
  if ('caller' in e) return { caller: true };
  const base = resolveExpr('load' in e ? e.load : e.load32, facts);
  if (!base || !facts.btf) return undefined;
  let offset = 0;
  for (const f of e.fields) {
    const neg = f.startsWith('-');
    const o = facts.btf.offsetOf(neg ? f.slice(1) : f);
    if (o === undefined) return undefined;
    offset += neg ? -o : o;
  }
  return { load: base, offset, width: 'load' in e ? 64 : 32 };
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
      const expr = resolveExpr(a.expr, facts);
      if (expr) args.push({ name: a.name, expr, type: a.type, afterFilter: a.afterFilter ?? false }); else dropped.push(a.name);
    }
    let filter: RFilter[] | undefined;
    for (const set of spec.filters) {
      const out: RFilter[] = [];
      let ok = true;
      for (const f of set) {
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
    if (spec.filters.length > 1 && filter !== undefined && spec.filters[0]!.length && JSON.stringify(filter.map((f) => 'arg' in f ? f.arg : 'ret')) !== JSON.stringify(spec.filters[0]!.map((f) => 'arg' in f ? f.arg : 'ret')))
      warnings.push(`${spec.id}: preferred filter unavailable, using ${filter.map((f) => 'arg' in f ? f.arg : 'ret').join('+')}`);
    attach.push({ spec, symbol, module: facts.symbols.get(symbol)!.module, args, filter, dropped });
  }
  const caps = new Set<Capability>([Capability.DEVICE_INFO]);
  for (const cap of new Set(profile.probes.map((p) => p.capability))) {
    const required = profile.probes.filter((p) => p.capability === cap && !p.optional);
    const attachedIds = new Set(attach.map((p) => p.spec.id));
    const any = attach.some((p) => p.spec.capability === cap);
    if (any && required.every((p) => attachedIds.has(p.id))) caps.add(cap);
  }
  if (!facts.btf) warnings.push('no BTF: device names, had_vmas and the vfio-inode filter are unavailable');
  const memoryLockOffset = facts.btf?.offsetOf('vfio_pci_core_device.memory_lock');
  return { profile, kernelRelease: facts.release, btf: !!facts.btf, attach, missing, capabilities: [...caps].sort((a, b) => a - b), memoryLockOffset, warnings };
}

/** The --dry-run text: what attaches where, what is missing and what that costs. */
export function describePlan(plan: Plan, backend: string): string {
  const capName = (c: Capability) => Capability[c];
  const lines = [`kernel ${plan.kernelRelease}: profile ${plan.profile.id} — ${plan.profile.era}`,
    `backend ${backend}; BTF ${plan.btf ? 'yes' : 'no'}; capabilities: ${plan.capabilities.map(capName).join(', ')}`, '', 'attach:'];
  for (const p of plan.attach) {
    const f = p.filter.map((x) => 'retRange' in x ? `caller in [${hex(x.retRange[0])},${hex(x.retRange[1])})`
      : 'range' in x ? `${x.arg} in [${hex(x.range[0])},${hex(x.range[1])})` : `${x.arg} == ${x.eq.map(hex).join('|')}`).join(' && ');
    lines.push(`  ${p.spec.id.padEnd(15)} ${p.spec.kind === 'entry' ? 'kprobe   ' : 'kretprobe'} ${p.symbol}${p.module ? ` [${p.module}]` : ''}` +
      `  args(${p.args.map((a) => a.name).join(',')})${f ? `  filter: ${f}` : ''}${p.dropped.length ? `  (no BTF: without ${p.dropped.join(',')})` : ''}`);
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
