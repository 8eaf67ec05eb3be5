// `revokescope lab`: the kernel lab as a user command for kernel developers. Boots a Debian kernel (by version)
// or a local bzImage + modules under QEMU/TCG with vfio-pci on emulated edu and nvme devices, runs the standard
// workload under our own collector inside the guest, and prints `revokescope analyze`'s result for the trace.
// Exit codes: 0 no certain finding; 1 a certain (not inconclusive) finding; 2 usage error; 3 the lab failed.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { analyzeBatches } from '../../core/analysis.js';
import { FindingKind, type EventBatch } from '../../core/model.js';
import { batchFromJson } from '../../trace/index.js';
import { duration, helpText, oneOf, parseCommand, text, UsageError, type OptionTable } from '../options.js';
import { run as analyze, type CommandIo } from './analyze.js';

const KERNELS = ['7.3', '7.2', '6.12', '6.1'] as const;

const labOptions = {
  kernel: { flag: 'kernel', arg: 'VERSION', parse: oneOf(...KERNELS),
    help: 'a pinned Debian kernel: 7.3 (experimental), 7.2 (sid), 6.12, 6.1; fetched with apt into .cache/kernel-lab (7.x through a private sources list; never installed)' },
  kernelImage: { flag: 'kernel-image', arg: 'FILE', parse: text, help: 'a local kernel (bzImage) instead, with --modules' },
  modules: { flag: 'modules', arg: 'DIR', parse: text,
    help: 'its modules directory (lib/modules/<release>: vfio, vfio_iommu_type1, vfio-pci-core, vfio-pci, 9p, 9pnet_virtio, netfs, or built in; BTF recommended)' },
  backend: { flag: 'backend', arg: 'ftrace|bpftrace', default: 'ftrace', parse: oneOf('ftrace', 'bpftrace'),
    help: 'the collector\'s backend in the guest (bpftrace needs minutes to compile under TCG)' },
  stacks: { flag: 'stacks', boolean: true, help: 'the collector in the guest takes kernel stacks (collect --stacks)' },
  format: { flag: 'format', arg: 'table|json', default: 'table', parse: oneOf('table', 'json'), help: 'table or analyze\'s JSON { "episodes", "findings", "summary" }' },
  out: { flag: 'out', arg: 'DIR', parse: text, help: 'where the guest\'s results go: trace, raw capture, ledger, logs (default .cache/kernel-lab/lab-<kernel>)' },
  timeout: { flag: 'timeout', arg: 'DURATION', default: 900e9, parse: duration({ min: 1e9 }), help: 'limit for the guest' },
  importerDelay: { flag: 'importer-delay', arg: 'DURATION', default: 0, parse: duration(),
    help: 'how long the lab importer on nvme takes per DMABUF invalidation; above the SLOW_REVOKE limit (50ms) its revokes are findings: a check of the check' },
} satisfies OptionTable;

const HELP = helpText(`revokescope lab --kernel VERSION [options]
       revokescope lab --kernel-image BZIMAGE --modules DIR [options]`, `
Boots a kernel under QEMU (TCG, no KVM needed) with vfio-pci bound to emulated devices (QEMU edu twice, one of
them a two-function device, and nvme), drives the standard workload (BAR mmap and faults, PCI_COMMAND memory
off/on, VFIO_DEVICE_RESET, hot reset, FLR, D3hot/D0, close; on kernels that export DMABUFs also BAR0 DMABUFs
with the lab importer module attached), traces it with revokescope's own collector inside the guest, and
prints the analysis of that trace (what \`revokescope analyze\` prints).`, [['options', labOptions]],
`Needs root (apt-get for qemu-system-x86, busybox-static etc.; 7.x also builds the importer module in a sid
build root under .cache) and network access to deb.debian.org on the first run.
exit status: 0 no certain finding, 1 a certain finding (not inconclusive), 2 usage error, 3 the lab failed.`);

const processIo: CommandIo = { stdout: process.stdout, stderr: process.stderr };

/** The checkout this command belongs to: test/kernel-lab holds the lab's scripts. */
function repoRoot(): string | undefined {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++, dir = dirname(dir)) if (existsSync(join(dir, 'test/kernel-lab/run.sh'))) return dir;
  return undefined;
}

export async function run(argv: string[], io: CommandIo = processIo, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  let values;
  try {
    const o = parseCommand(argv, labOptions, env);
    if (o.help) { io.stdout.write(`${HELP}\n`); return 0; }
    values = o.values;
    if (!values.kernel === !values.kernelImage) throw new UsageError('give either --kernel VERSION or --kernel-image FILE with --modules DIR');
    if (values.kernelImage && !values.modules) throw new UsageError('--kernel-image needs --modules DIR');
    if (values.modules && !values.kernelImage) throw new UsageError('--modules goes with --kernel-image');
    if (values.kernelImage && !existsSync(values.kernelImage)) throw new UsageError(`--kernel-image ${values.kernelImage}: no such file`);
    if (values.modules && !existsSync(values.modules)) throw new UsageError(`--modules ${values.modules}: no such directory`);
  } catch (e) {
    if (e instanceof UsageError) return usage(io, e.message);
    throw e;
  }
  const { kernel, kernelImage: image, modules, backend, format } = values;
  const timeoutS = Math.ceil(values.timeout / 1e9), delayUs = Math.round(values.importerDelay / 1e3);
  if (process.platform !== 'linux' || process.arch !== 'x64') { io.stderr.write(`revokescope lab: needs linux/x64 (this is ${process.platform}/${process.arch})\n`); return 3; }
  const repo = repoRoot();
  if (!repo) { io.stderr.write('revokescope lab: test/kernel-lab/run.sh not found next to this installation (run it from a checkout)\n'); return 3; }

  const id = kernel ?? `local-${(modules ?? '').replace(/\/+$/, '').split('/').pop()}`;
  const out = resolve(String(values.out ?? join(repo, '.cache/kernel-lab', `lab-${id}`)));
  const labEnv: NodeJS.ProcessEnv = {
    ...env, MODE: 'lab', BACKENDS: backend, SCENARIO: 'auto', STACKS: values.stacks ? '1' : env.STACKS ?? '0', OUT: out, QEMU_TIMEOUT: String(timeoutS), IMPORTER_DELAY_US: String(delayUs),
    ...(kernel ? { KERNEL: kernel } : { KERNEL: 'local', KERNEL_IMAGE: resolve(image!), KERNEL_MODULES: resolve(modules!), LAB_ID: id }),
  };
  const t0 = Date.now();
  io.stderr.write(`revokescope lab: ${kernel ? `Debian ${kernel}` : image} under QEMU/TCG, collector backend ${backend}; results in ${out}\n`);
  const code = await new Promise<number>((res) => {
    const child = spawn(join(repo, 'test/kernel-lab/run.sh'), [], { env: labEnv, stdio: ['ignore', 'ignore', 'pipe'] });
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
