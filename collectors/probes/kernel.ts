// What the running kernel offers to probe: symbols (/proc/kallsyms), which of them ftrace can attach to
// (available_filter_functions), module text ranges and BTF offsets. Readers take paths so tests can
// feed recorded files.
import { existsSync, readFileSync } from 'node:fs';
import { release } from 'node:os';
import { loadKernelBtf, type OffsetSource } from './btf.js';
import { CALLSITE_MODULE, PROFILES } from './profiles.js';
import { findCallSites, readKernelMemory, type CallSite } from './callsites.js';

export interface KernelSymbol { address: bigint; type: string; module: string }

export interface KernelFacts {
  release: string;
  /** name -> first symbol seen (module '' = vmlinux). */
  symbols: Map<string, KernelSymbol>;
  /** Functions kprobes/ftrace can attach to; undefined when the list could not be read (assume kallsyms text). */
  traceable?: Set<string>;
  /** Struct member offsets from BTF; undefined on kernels without BTF. */
  btf?: OffsetSource;
  /** Whether addresses are real (root) rather than zeroed by kptr_restrict. */
  addressesKnown: boolean;
  /** Direct calls from vfio-pci-core to the functions profiles probe at their call sites (from /proc/kcore);
   * undefined when the kernel image could not be read. */
  callSites?: CallSite[];
  /** Why callSites is undefined. */
  callSitesError?: string;
}

export function parseKallsyms(text: string, keep?: (name: string, module: string) => boolean): { symbols: Map<string, KernelSymbol>; addressesKnown: boolean } {
  const symbols = new Map<string, KernelSymbol>();
  let nonZero = false;
  // ~150k lines on a distro kernel: parsed by hand, no regex (this runs in slow guests too).
  for (const line of text.split('\n')) {
    // "ffffffffc043e000 t vfio_pci_core_ioctl\t[vfio_pci_core]"
    if (line.length < 20 || line[16] !== ' ') continue;
    const tab = line.indexOf('\t', 19);
    const name = tab < 0 ? line.slice(19).trimEnd() : line.slice(19, tab);
    if (symbols.has(name)) continue;
    const module = tab >= 0 && line[tab + 1] === '[' ? line.slice(tab + 2, line.indexOf(']', tab)) : '';
    if (line[0] !== '0') nonZero = true;
    if (keep && !keep(name, module)) continue;
    const hex = line.slice(0, 16);
    const address = hex === '0000000000000000' ? 0n : BigInt('0x' + hex);
    if (address !== 0n) nonZero = true;
    symbols.set(name, { address, type: line[17]!, module });
  }
  return { symbols, addressesKnown: nonZero };
}

/** available_filter_functions lines: "name", "name [module]" or, with addresses, "ffff... name". */
export function parseFilterFunctions(text: string): Set<string> {
  const out = new Set<string>();
  for (const line of text.split('\n')) {
    let s = line;
    if (s.length > 17 && s[16] === ' ' && /^[0-9a-f]{16}$/.test(s.slice(0, 16))) s = s.slice(17);
    const end = s.search(/[\s]/);
    const name = end < 0 ? s : s.slice(0, end);
    if (name) out.add(name);
  }
  return out;
}

/** [lo, hi) of a module's text, from its text symbols (return addresses of its calls fall inside). */
export function moduleTextRange(symbols: Map<string, KernelSymbol>, module: string): { lo: bigint; hi: bigint } | undefined {
  let lo: bigint | undefined, hi: bigint | undefined;
  for (const s of symbols.values()) {
    if (s.module !== module || !/^[tT]$/.test(s.type) || s.address === 0n) continue;
    if (lo === undefined || s.address < lo) lo = s.address;
    if (hi === undefined || s.address > hi) hi = s.address;
  }
  // The last function's size is not in kallsyms: allow 16 KiB past its start.
  return lo !== undefined && hi !== undefined ? { lo, hi: hi + 0x4000n } : undefined;
}

export function tracefsRoot(): string | undefined {
  for (const p of ['/sys/kernel/tracing', '/sys/kernel/debug/tracing']) if (existsSync(`${p}/kprobe_events`)) return p;
  return undefined;
}

/** Calls from `module`'s text to every function a profile probes at call sites, read from the live kernel image. */
export function moduleCallSites(symbols: Map<string, KernelSymbol>, module: string, kcore = '/proc/kcore'): { sites?: CallSite[]; error?: string } {
  const range = moduleTextRange(symbols, module);
  if (!range) return { error: `${module} is not loaded` };
  const callees = new Set(PROFILES.flatMap((p) => p.probes.filter((q) => q.callsite).flatMap((q) => q.symbols)));
  const targets = new Map<bigint, string>();
  for (const c of callees) { const s = symbols.get(c); if (s && s.address && s.module === '') targets.set(s.address, c); }
  const functions = new Map<bigint, string>();
  for (const [name, s] of symbols) if (s.module === module && /^[tT]$/.test(s.type) && s.address) functions.set(s.address, name);
  try {
    const text = readKernelMemory(range.lo, range.hi, kcore);
    return text ? { sites: findCallSites(text, range.lo, targets, functions) } : { error: `${kcore} has no segment for ${module}'s text` };
  } catch (e) { return { error: `${kcore}: ${(e as Error).message}` }; }
}

export function readKernelFacts(opts: { kallsyms?: string; filterFunctions?: string; btfRoot?: string; release?: string; kcore?: string } = {}): KernelFacts {
  // Keep what profiles can ask for: their symbols, anything vfio or dma-buf, and module text (ranges).
  const wanted = new Set(PROFILES.flatMap((p) => [...p.probes.flatMap((q) => q.symbols), ...(p.match.all ?? []),
    ...[...(p.match.any ?? []), ...(p.match.none ?? [])].filter((x): x is string => typeof x === 'string')]));
  const ks = parseKallsyms(readFileSync(opts.kallsyms ?? '/proc/kallsyms', 'utf8'),
    (name, module) => module.startsWith('vfio') || wanted.has(name) || name.includes('vfio') || name.startsWith('dma_buf'));
  const tracing = tracefsRoot();
  const aff = opts.filterFunctions ?? (tracing ? `${tracing}/available_filter_functions` : undefined);
  let traceable: Set<string> | undefined;
  try { if (aff) traceable = parseFilterFunctions(readFileSync(aff, 'utf8')); } catch { traceable = undefined; }
  let btf: OffsetSource | undefined;
  try { btf = loadKernelBtf(['vfio_pci_core', 'vfio'], opts.btfRoot); } catch { btf = undefined; }
  const cs = opts.kallsyms ? { error: 'planned from recorded facts' } : !ks.addressesKnown ? { error: 'kernel addresses hidden (kptr_restrict)' }
    : moduleCallSites(ks.symbols, CALLSITE_MODULE, opts.kcore);
  return { release: opts.release ?? release(), symbols: ks.symbols, traceable, btf, addressesKnown: ks.addressesKnown, callSites: cs.sites, callSitesError: cs.error };
}

/** address -> "module:symbol" ("vmlinux:symbol" for the kernel image) from /proc/kallsyms: a search of the text
 * for the address (no table of every symbol: slow guests and busy hosts pay for each of the ~200k entries), read
 * when first needed and again (at most every 10 s) for an address it does not find (a module loaded since). */
export function symbolizer(path = '/proc/kallsyms'): (address: bigint) => string | undefined {
  let text: string | undefined;
  let readAt = 0;
  const cache = new Map<bigint, string>();
  const load = () => { readAt = Date.now(); try { text = readFileSync(path, 'utf8'); } catch { text = ''; } };
  const find = (address: bigint): string | undefined => {
    const hex = address.toString(16).padStart(16, '0');
    let i = text!.startsWith(hex + ' ') ? 0 : text!.indexOf('\n' + hex + ' ');
    if (i < 0) return undefined;
    if (i > 0) i++;
    const end = text!.indexOf('\n', i);
    const line = text!.slice(i, end < 0 ? undefined : end);
    const tab = line.indexOf('\t', 19);
    const name = tab < 0 ? line.slice(19).trimEnd() : line.slice(19, tab);
    const module = tab >= 0 && line[tab + 1] === '[' ? line.slice(tab + 2, line.indexOf(']', tab)) : 'vmlinux';
    return `${module}:${name}`;
  };
  return (address) => {
    const known = cache.get(address);
    if (known !== undefined) return known;
    if (text === undefined) load();
    let name = find(address);
    if (name === undefined && Date.now() - readAt > 10_000) { load(); name = find(address); }
    if (name !== undefined) cache.set(address, name);
    return name;
  };
}
