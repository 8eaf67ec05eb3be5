// `revokescope analyze`: JSON shape, table sections, --fail-on exit codes, --lenient, usage errors,
// in-process through run() and once through the built binary.
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from '../services/cli/commands/analyze.js';
import { writeTrace } from '../services/trace/index.js';
import { Backing, TraceBuilder, TriggerKind } from './support/trace-builder.js';

const dir = mkdtempSync(join(tmpdir(), 'revokescope-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const D = '0000:3b:00.0';
const D2 = '0000:af:00.1';

class Capture extends Writable {
  text = '';
  override _write(chunk: Buffer, _enc: string, cb: () => void): void { this.text += chunk.toString(); cb(); }
}

async function analyze(...argv: string[]) {
  const stdout = new Capture();
  const stderr = new Capture();
  const code = await run(argv, { stdout, stderr });
  return { code, stdout: stdout.text, stderr: stderr.text };
}

/** series kernel: D is nvgrace-gpu that forgot to opt in to zapping (SKIPPED_ZAP CRITICAL, twice);
 * D2 is vfio-pci with only DMABUF mappings but zapping anyway (REDUNDANT_ZAP INFO); a 6.12 host resets fine. */
function faultyTrace(): TraceBuilder[] {
  const a = new TraceBuilder('series', 'host-a', 'boot-a');
  a.info(0, D, 'nvgrace-gpu', false).mmap(1, D, 7, { snapshot: true, backing: Backing.CUSTOM_VM_OPS });
  a.info(0, D2, 'vfio-pci', true).mmap(1, D2, 9, { snapshot: true, backing: Backing.DMABUF });
  for (const t of [100, 200_000]) {
    a.trigger(t, D, TriggerKind.RESET).acquire(t + 2, D).revoke(t + 50, D, true, { count: 1, durationNs: 120_000 })
      .revoke(t + 20_000, D, false).release(t + 30_000, D);
    a.fault(t + 40_000, D, 7);
  }
  a.trigger(500_000, D2, TriggerKind.FLR, 200).acquire(500_002, D2, 200).zap(500_010, D2, { tid: 200, durationNs: 3_000 })
    .revoke(500_050, D2, true, { count: 1, durationNs: 2_000_000, tid: 200 }).revoke(500_900, D2, false, { tid: 200 }).release(501_000, D2, 200);
  const b = new TraceBuilder('6.12', 'host-b', 'boot-b');
  b.info(0, D, 'vfio-pci').mmap(1, D, 3, { snapshot: true, backing: Backing.LEGACY });
  b.trigger(100, D, TriggerKind.RESET).acquire(102, D).zap(110, D, { durationNs: 8_000 }).release(30_000, D);
  return [a, b];
}

let trace: string;
let clean: string;
beforeAll(async () => {
  trace = join(dir, 'faulty.pb');
  await writeTrace(trace, faultyTrace().flatMap((t) => t.batches(5)));
  clean = join(dir, 'clean.jsonl');
  await writeTrace(clean, [faultyTrace()[1]!].flatMap((t) => t.batches(5)));
});

describe('analyze --format json', () => {
  it('prints episodes, findings and summary with proto3 JSON names, enum names, 64-bit strings', async () => {
    const r = await analyze(trace, '--format', 'json');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(Object.keys(out)).toEqual(['episodes', 'findings', 'summary']);
    expect(out.episodes).toHaveLength(4);
    const ep = out.episodes.find((e: { hostname: string }) => e.hostname === 'host-b');
    expect(ep).toMatchObject({ device: D, driver: 'vfio-pci', trigger: 'RESET', revoke: true, zapCount: 1, complete: true,
      kernelRelease: '6.12.57+deb13-amd64', acquireTsNs: '1000000102000', revokeNs: '16000' });
    expect(typeof ep.episodeId).toBe('string');
    expect(Object.keys(ep)).toContain('dmabufRevokeNs');
    expect(r.stdout).not.toMatch(/"[a-z]+_[a-z_]+":/); // no snake_case keys
    const kinds = out.findings.map((f: { kind: string; severity: string }) => `${f.kind}/${f.severity}`).sort();
    expect(kinds).toEqual(['REDUNDANT_ZAP/INFO', 'SKIPPED_ZAP/CRITICAL', 'SKIPPED_ZAP/CRITICAL']);
    const skipped = out.findings.find((f: { kind: string }) => f.kind === 'SKIPPED_ZAP');
    expect(skipped).toMatchObject({ hostname: 'host-a', device: D, driver: 'nvgrace-gpu', inconclusive: false });
    expect(skipped.tsNs).toMatch(/^\d+$/);
    expect(out.summary).toMatchObject({
      events: 28, episodes: 4, revokeEpisodes: 4, incompleteEpisodes: 0,
      findings: { total: 3, inconclusive: 0, bySeverity: { CRITICAL: 2, WARNING: 0, INFO: 1 },
        byKind: { SKIPPED_ZAP: 2, REDUNDANT_ZAP: 1, SLOW_REVOKE: 0, LOCK_NOT_HELD: 0 } },
      worstDevices: { SKIPPED_ZAP: [{ hostname: 'host-a', device: D, driver: 'nvgrace-gpu', count: 2, worstSeverity: 'CRITICAL' }] },
    });
    expect(out.summary.revokeLatency.byKernel['6.12.57+deb13-amd64']).toEqual({ count: 1, p50Ns: 16000, p90Ns: 16000, p99Ns: 16000, maxNs: 16000 });
    expect(out.summary.revokeLatency.byDriver['nvgrace-gpu']).toMatchObject({ count: 2, maxNs: 168000 });
    expect(out.summary.revokeLatency.all.count).toBe(4);
    expect(out.summary.revokeLatency.histogram.reduce((n: number, b: { count: number }) => n + b.count, 0)).toBe(4);
  });

  it('an empty trace is valid JSON with empty lists', async () => {
    const file = join(dir, 'empty.jsonl');
    writeFileSync(file, '');
    const r = await analyze(file, '--format', 'json');
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out).toMatchObject({ episodes: [], findings: [], summary: { episodes: 0, findings: { total: 0 } } });
  });

  it('limits are options: --slow-revoke-limit 100us adds SLOW_REVOKE findings', async () => {
    const out = JSON.parse((await analyze(trace, '--format=json', '--slow-revoke-limit', '100us')).stdout);
    expect(out.summary.findings.byKind.SLOW_REVOKE).toBe(3); // 168 µs, 168 µs, 2.05 ms; not 16 µs
  });
});

describe('analyze --fail-on', () => {
  it('exit 0 with findings unless --fail-on is met', async () => {
    expect((await analyze(trace)).code).toBe(0);
    expect((await analyze(trace, '--fail-on', 'critical')).code).toBe(1);
    expect((await analyze(trace, '--fail-on', 'INFO')).code).toBe(1);
    expect((await analyze(clean, '--fail-on', 'info')).code).toBe(0);
  });

  it('only INFO findings do not meet --fail-on warning', async () => {
    const a = new TraceBuilder('series');
    a.info(0, D2, 'vfio-pci', true).mmap(1, D2, 9, { snapshot: true, backing: Backing.DMABUF });
    a.acquire(100, D2).zap(110, D2).revoke(120, D2, true).revoke(200, D2, false).release(300, D2);
    const file = join(dir, 'info.jsonl');
    await writeTrace(file, a.batches());
    expect((await analyze(file, '--fail-on', 'warning')).code).toBe(0);
    expect((await analyze(file, '--fail-on', 'info')).code).toBe(1);
  });
});

describe('analyze --format table', () => {
  it('has the sections a person needs', async () => {
    const r = await analyze(trace, '--format', 'table');
    expect(r.code).toBe(0);
    const t = r.stdout;
    expect(t).toContain(`revokescope analyze: ${trace}`);
    expect(t).toMatch(/input\s+\d+ batches, 28 events/);
    expect(t).toMatch(/episodes\s+4 \(revoke 4, incomplete 0\)/);
    expect(t).toMatch(/findings\s+3 \(CRITICAL 2, WARNING 0, INFO 1; inconclusive 0\)/);
    expect(t).toMatch(/by kernel\s+count\s+p50\s+p90\s+p99\s+max/);
    expect(t).toMatch(/6\.12\.57\+deb13-amd64\s+1\s+16\.0 µs\s+16\.0 µs\s+16\.0 µs\s+16\.0 µs/);
    expect(t).toMatch(/by driver\s+count/);
    expect(t).toMatch(/nvgrace-gpu\s+2\s+168 µs/);
    expect(t).toMatch(/SKIPPED_ZAP\s+2\s+host-a 0000:3b:00\.0 \(nvgrace-gpu\) ×2/);
    expect(t).toMatch(/REDUNDANT_ZAP\s+1\s+host-a 0000:af:00\.1 \(vfio-pci\) ×1/);
    expect(t).toContain('Revoke latency histogram (n=4)');
    expect(t).toMatch(/│█+ 2/);
  });

  it('lists the certain CRITICAL and WARNING findings, one line each with what it means and how to explain it', async () => {
    const json = JSON.parse((await analyze(trace, '--format', 'json')).stdout) as { findings: { findingId: string; kind: string; severity: string }[] };
    const t = (await analyze(trace, '--format', 'table')).stdout;
    const lines = t.split('\n');
    const at = lines.findIndex((l) => l.startsWith('To act on:'));
    expect(lines[at]).toBe('To act on: 2 certain CRITICAL and WARNING findings');
    const critical = json.findings.filter((f) => f.severity === 'CRITICAL');
    expect(lines.slice(at + 1, at + 3)).toEqual(critical.map((f) =>
      `  CRITICAL SKIPPED_ZAP host-a ${D}: a revoke left a BAR mapping of the device file reachable: userspace could touch MMIO ` +
      `during the reset or power-down  → revokescope explain ${f.findingId} --input ${trace}`));
    expect(lines[at + 3]).toBe(''); // the INFO REDUNDANT_ZAP is not listed
    const clean = (await analyze(join(dir, 'clean.jsonl'), '--format', 'table')).stdout;
    expect(clean).toContain('To act on: no certain CRITICAL or WARNING finding');
  });
});

describe('analyze input and usage errors', () => {
  it('exit 2 with one clear line for usage errors', async () => {
    for (const argv of [[], [trace, trace], [trace, '--format', 'xml'], [trace, '--fail-on', 'bad'],
      [trace, '--lateness', '2 fortnights'], [trace, '--bogus']]) {
      const r = await analyze(...argv);
      expect(r.code, argv.join(' ')).toBe(2);
      expect(r.stderr).toMatch(/^revokescope analyze: .+ \(see --help\)\n$/);
      expect(r.stdout).toBe('');
    }
  });

  it('--help', async () => {
    const r = await analyze('--help');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/usage: revokescope analyze FILE/);
    expect(r.stdout).toContain('--fail-on');
  });

  it('a bad line: exit 2 naming file and line; --lenient skips, counts and reports it', async () => {
    const file = join(dir, 'bad.jsonl');
    const good = readFileSync(clean, 'utf8').trimEnd().split('\n');
    writeFileSync(file, [good[0], '{"host":', ...good.slice(1)].join('\n'));
    const strict = await analyze(file);
    expect(strict.code).toBe(2);
    expect(strict.stderr).toMatch(new RegExp(`^revokescope analyze: ${file}:2: bad JSON`));
    const lenient = await analyze(file, '--lenient', '--format', 'json');
    expect(lenient.code).toBe(0);
    expect(lenient.stderr).toMatch(/--lenient: skipped 1 bad lines; first: .*bad\.jsonl:2: bad JSON/);
    expect(JSON.parse(lenient.stdout).summary.input.skippedInput).toBe(1);
    const table = await analyze(file, '--lenient');
    expect(table.stdout).toContain('bad lines/records skipped 1');
  });

  it('a missing file: exit 2', async () => {
    const r = await analyze(join(dir, 'missing.pb'));
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('missing.pb: cannot read: no such file');
  });
});

describe('the built binary', () => {
  const bin = join(process.cwd(), 'dist/services/cli/main.js');
  const built = existsSync(bin) && existsSync(join(process.cwd(), 'dist/services/cli/commands/analyze.js'));
  if (!built) {
    // `npm test` builds first; a bare `vitest run` without dist/ is told so instead of skipping quietly
    it('dist/ is built', () => { expect.fail(`${bin} missing: run npm run build (npm test does)`); });
    return;
  }
  it('revokescope analyze --format json --fail-on critical exits 1 with the same JSON', async () => {
    const exec = promisify(execFile);
    const inProcess = JSON.parse((await analyze(trace, '--format', 'json')).stdout);
    const err = await exec(process.execPath, [bin, 'analyze', trace, '--format', 'json', '--fail-on', 'critical'], { maxBuffer: 64 << 20 })
      .then(() => undefined, (e: { code: number; stdout: string }) => e);
    expect(err?.code).toBe(1);
    expect(JSON.parse(err!.stdout)).toEqual(inProcess);
  });
});

describe('traces written before rules v2 (test/fixtures/v1: the simulator and analyze of commit 27183b7)', () => {
  const fixtures = join(import.meta.dirname, 'fixtures/v1');
  const key = (f: { kind: string; hostname: string; device: string; tsNs: string }) => `${f.kind} ${f.hostname} ${f.device} ${f.tsNs}`;

  it('a correct fleet still gives no finding at all', async () => {
    const r = await analyze(join(fixtures, 'v1-correct.jsonl'), '--format', 'json');
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout) as { episodes: unknown[]; findings: unknown[] };
    expect(j.episodes.length).toBeGreaterThan(100);
    expect(j.findings).toEqual([]);
  });

  it('a faulted fleet reads as before; every certain finding now was one then (v2 only removes certainty)', async () => {
    const r = await analyze(join(fixtures, 'v1-fleet.pb'), '--format', 'json');
    expect(r.code).toBe(0);
    const now = JSON.parse(r.stdout) as { episodes: unknown[]; findings: { kind: string; severity: string; hostname: string; device: string; tsNs: string; inconclusive: boolean }[] };
    const then = JSON.parse(readFileSync(join(fixtures, 'v1-fleet.findings.json'), 'utf8')) as { episodes: number; findings: typeof now.findings };
    expect(now.episodes.length).toBe(then.episodes);
    const before = new Map(then.findings.map((f) => [key(f), f]));
    const certain = now.findings.filter((f) => !f.inconclusive);
    expect(certain.length).toBeGreaterThan(5);
    for (const f of certain) {
      expect(before.get(key(f)), key(f)).toMatchObject({ severity: f.severity, inconclusive: false });
    }
  });
});
