// `revokescope lab`: the kernel lab as a user command for kernel developers. Boots a Debian kernel (by version)
// or a local bzImage + modules under QEMU/TCG with vfio-pci on emulated edu and nvme devices, runs the standard
// workload under our own collector inside the guest, and prints `revokescope analyze`'s result for the trace.
// Exit codes: 0 no certain finding; 1 a certain (not inconclusive) finding; 2 usage error; 3 the lab failed.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { analyzeBatches } from '../../core/analysis.js';
import { FindingKind, type EventBatch } from '../../core/model.js';
import { batchFromJson } from '../../trace/index.js';
import { DurationError, parseDuration } from '../duration.js';
import { run as analyze, type CommandIo } from './analyze.js';

const HELP = `usage: revokescope lab --kernel VERSION [options]
       revokescope lab --kernel-image BZIMAGE --modules DIR [options]

Boots a kernel under QEMU (TCG, no KVM needed) with vfio-pci bound to emulated devices (QEMU edu twice, one of
them a two-function device, and nvme), drives the standard workload (BAR mmap and faults, PCI_COMMAND memory
off/on, VFIO_DEVICE_RESET, hot reset, FLR, D3hot/D0, close; on kernels that export DMABUFs also BAR0 DMABUFs
with the lab importer module attached), traces it with revokescope's own collector inside the guest, and
prints the analysis of that trace (what \`revokescope analyze\` prints).

kernel:
  --kernel VERSION       a pinned Debian kernel: 7.3 (experimental), 7.2 (sid), 6.12, 6.1; fetched with apt
                         into .cache/kernel-lab (7.x through a private sources list; never installed)
  --kernel-image FILE    a local kernel (bzImage) instead, with
  --modules DIR          its modules directory (lib/modules/<release>: vfio, vfio_iommu_type1, vfio-pci-core,
                         vfio-pci, 9p, 9pnet_virtio, netfs modules, or these built in; BTF recommended)
options:
  --backend ftrace|bpftrace   the collector's backend in the guest (default ftrace; bpftrace needs minutes to
                              compile under TCG)
  --format table|json    table (default) or analyze's JSON { "episodes", "findings", "summary" }
  --out DIR              where the guest's results go (trace, raw capture, ledger, logs)
                         (default .cache/kernel-lab/lab-<kernel>)
  --timeout DURATION     limit for the guest (default 15m)
  --importer-delay DURATION
                         how long the lab importer on nvme takes per DMABUF invalidation (default 0); above
                         the SLOW_REVOKE limit (50ms) its revokes are findings: a check of the check
  -h, --help             this text

Needs root (apt-get for qemu-system-x86, busybox-static etc.; 7.x also builds the importer module in a sid
build root under .cache) and network access to deb.debian.org on the first run.
exit status: 0 no certain finding, 1 a certain finding (not inconclusive), 2 usage error, 3 the lab failed.`;

const KERNELS = ['7.3', '7.2', '6.12', '6.1'];
const processIo: CommandIo = { stdout: process.stdout, stderr: process.stderr };

/** The checkout this command belongs to: test/kernel-lab holds the lab's scripts. */
function repoRoot(): string | undefined {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++, dir = dirname(dir)) if (existsSync(join(dir, 'test/kernel-lab/run.sh'))) return dir;
  return undefined;
}

export async function run(argv: string[], io: CommandIo = processIo): Promise<number> {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({ args: argv, strict: true, options: {
      kernel: { type: 'string' }, 'kernel-image': { type: 'string' }, modules: { type: 'string' },
      backend: { type: 'string', default: 'ftrace' }, format: { type: 'string', default: 'table' },
      out: { type: 'string' }, timeout: { type: 'string', default: '15m' }, 'importer-delay': { type: 'string', default: '0' },
      help: { type: 'boolean', short: 'h' },
    } }));
  } catch (e) { return usage(io, (e as Error).message); }
  if (values.help) { io.stdout.write(`${HELP}\n`); return 0; }
  const kernel = values.kernel as string | undefined, image = values['kernel-image'] as string | undefined, modules = values.modules as string | undefined;
  const backend = String(values.backend), format = String(values.format);
  if (!kernel === !image) return usage(io, 'give either --kernel VERSION or --kernel-image FILE with --modules DIR');
  if (kernel && !KERNELS.includes(kernel)) return usage(io, `--kernel must be one of ${KERNELS.join(', ')}, not ${JSON.stringify(kernel)}`);
  if (image && !modules) return usage(io, '--kernel-image needs --modules DIR');
  if (modules && !image) return usage(io, '--modules goes with --kernel-image');
  if (image && !existsSync(image)) return usage(io, `--kernel-image ${image}: no such file`);
  if (modules && !existsSync(modules)) return usage(io, `--modules ${modules}: no such directory`);
  if (backend !== 'ftrace' && backend !== 'bpftrace') return usage(io, `--backend must be ftrace or bpftrace, not ${JSON.stringify(backend)}`);
  if (format !== 'table' && format !== 'json') return usage(io, `--format must be table or json, not ${JSON.stringify(format)}`);
  let timeoutS: number, delayUs: number;
  try {
    timeoutS = Math.ceil(parseDuration(String(values.timeout), '--timeout', 's') / 1e9);
    delayUs = Math.round(parseDuration(String(values['importer-delay']), '--importer-delay') / 1e3);
  } catch (e) { if (e instanceof DurationError) return usage(io, e.message); throw e; }
  if (process.platform !== 'linux' || process.arch !== 'x64') { io.stderr.write(`revokescope lab: needs linux/x64 (this is ${process.platform}/${process.arch})\n`); return 3; }
  const repo = repoRoot();
  if (!repo) { io.stderr.write('revokescope lab: test/kernel-lab/run.sh not found next to this installation (run it from a checkout)\n'); return 3; }

  const id = kernel ?? `local-${(modules ?? '').replace(/\/+$/, '').split('/').pop()}`;
  const out = resolve(String(values.out ?? join(repo, '.cache/kernel-lab', `lab-${id}`)));
  const env: NodeJS.ProcessEnv = {
    ...process.env, MODE: 'lab', BACKENDS: backend, SCENARIO: 'auto', OUT: out, QEMU_TIMEOUT: String(timeoutS), IMPORTER_DELAY_US: String(delayUs),
    ...(kernel ? { KERNEL: kernel } : { KERNEL: 'local', KERNEL_IMAGE: resolve(image!), KERNEL_MODULES: resolve(modules!), LAB_ID: id }),
  };
  const t0 = Date.now();
  io.stderr.write(`revokescope lab: ${kernel ? `Debian ${kernel}` : image} under QEMU/TCG, collector backend ${backend}; results in ${out}\n`);
  const code = await new Promise<number>((res) => {
    const child = spawn(join(repo, 'test/kernel-lab/run.sh'), [], { env, stdio: ['ignore', 'ignore', 'pipe'] });
    child.stderr.on('data', (d: Buffer) => io.stderr.write(d));
    child.on('error', (e) => { io.stderr.write(`revokescope lab: ${e.message}\n`); res(127); });
    child.on('close', (c) => res(c ?? 1));
  });
  const trace = join(out, `trace-${backend}.jsonl`);
  if (code !== 0 || !existsSync(trace)) {
    const guestLog = existsSync(join(out, 'guest.log')) ? readFileSync(join(out, 'guest.log'), 'utf8') : '(no guest log)';
    io.stderr.write(`revokescope lab: the lab failed (run.sh exit ${code}${existsSync(trace) ? '' : ', no trace'}); guest log:\n${guestLog}\nconsole: ${join(out, 'console.txt')}\n`);
    return 3;
  }
  io.stderr.write(`revokescope lab: guest done in ${((Date.now() - t0) / 1000).toFixed(0)} s; analysis of ${trace}:\n`);
  const rc = await analyze([trace, '--format', format], io);
  if (rc !== 0) return rc === 1 ? 1 : 3;
  // a certain finding fails the run (for a patch series' CI): the same correlation, counted
  const batches = readFileSync(trace, 'utf8').split('\n').filter(Boolean).map((l) => batchFromJson(JSON.parse(l)) as EventBatch);
  const certain = analyzeBatches(batches).findings.filter((f) => !f.inconclusive);
  if (certain.length) {
    const kinds = [...new Set(certain.map((f) => FindingKind[f.kind]))].join(', ');
    io.stderr.write(`revokescope lab: ${certain.length} certain finding(s): ${kinds}\n`);
    return 1;
  }
  return 0;
}

function usage(io: CommandIo, message: string): number {
  io.stderr.write(`revokescope lab: ${message} (see --help)\n`);
  return 2;
}
