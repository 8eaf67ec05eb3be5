// `revokescope compare` on simulated fleets (the simulator's public API: FleetSimulator options only), correlated by
// the real correlator. From the store (chDB, written by the store's writer): a candidate whose revoke latencies are
// the other fleet's × 1.2 is a regression whose intervals hold 1.2 (exit 1); an identical fleet is none (exit 0); the
// store path and the trace path give the same comparison. From two trace files: same era → 0, 6.12 vs 6.19 → 1.
// Usage and input errors exit 2.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FleetSimulator } from '../collectors/simulator/index.js';
import { run } from '../services/cli/commands/compare.js';
import { compareKernels, type Comparison } from '../services/report/compare.js';
import { ClickHouseStore } from '../services/store/clickhouse-store.js';
import { connect } from '../services/store/connect.js';
import { writeTrace } from '../services/trace/index.js';
import { asKernel, correlatedFleet, strataOf, writeFleets, type Correlated } from './support/compare-fleets.js';

class Capture extends Writable {
  text = '';
  override _write(chunk: Buffer, _enc: string, cb: () => void): void { this.text += chunk.toString(); cb(); }
}

async function compare(...argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const stdout = new Capture(), stderr = new Capture();
  const code = await run(argv, { stdout, stderr }, NOW_MS);
  return { code, stdout: stdout.text, stderr: stderr.text };
}

const NOW_MS = Math.floor(Date.now() / 60_000) * 60_000;
const dir = mkdtempSync(join(tmpdir(), 'revokescope-compare-'));
/** 300 hosts × 2 minutes: 60 hosts of each kernel era, ≈ 45,000 episodes per era. */
const FLEET = { hosts: 300, durationNs: 120e9 };

let a: Correlated, b: Correlated;
let store: ClickHouseStore;
const dataDir = join(dir, 'store');

beforeAll(async () => {
  a = correlatedFleet({ ...FLEET, seed: 41 });
  b = correlatedFleet({ ...FLEET, seed: 42 });
  const conn = await connect({ dataDir });
  store = new ClickHouseStore(conn.client, { now: () => NOW_MS - 10 * 60_000, writer: { maxDelayMs: 50 } });
  await store.migrate();
  await writeFleets(store, [a, asKernel(b, 'same-'), asKernel(b, 'slow-', 1.2)]);
  await store.close(); // the command opens the directory itself
}, 600_000);

afterAll(() => rmSync(dir, { recursive: true, force: true }));

const overall = (c: Comparison, metric: string, q: number) => c.overall.latency.find((l) => l.metric === metric && l.q === q)!;

describe('from the store', () => {
  for (const era of ['6.12', '6.19']) {
    it(`${era}: revoke latency × 1.2 is a regression, exit 1, and every overall revoke interval holds 1.2`, async () => {
      const r = await compare('--data-dir', dataDir, '--baseline', `${era}.*`, '--candidate', `slow-${era}.*`, '--format', 'json');
      expect(r.stderr).toBe('');
      expect(r.code).toBe(1);
      const c = JSON.parse(r.stdout) as Comparison;
      expect(c.verdict).toBe('regression');
      expect(c.baseline.hosts).toBe(60);
      expect(c.candidate.kernels.every((k) => k.startsWith(`slow-${era}.`))).toBe(true);
      for (const q of [0.5, 0.9, 0.99]) {
        const l = overall(c, 'revoke', q);
        expect(l.strata, `p${q * 100} strata`).toBeGreaterThan(0);
        expect(l.lower!, `p${q * 100}`).toBeLessThanOrEqual(1.2);
        expect(l.upper!, `p${q * 100}`).toBeGreaterThanOrEqual(1.2);
      }
      // the hold time was not touched
      for (const q of [0.5, 0.9]) expect(overall(c, 'hold', q).verdict).toBe('no significant difference');
    });

    it(`${era}: an identical fleet (another seed) is no regression, exit 0`, async () => {
      const r = await compare('--data-dir', dataDir, '--baseline', `${era}.*`, '--candidate', `same-${era}.*`, '--format', 'json');
      expect(r.code).toBe(0);
      expect((JSON.parse(r.stdout) as Comparison).verdict).toBe('no significant difference');
    });
  }

  it('reads the same comparison from the store as the trace path builds from the episodes', async () => {
    const r = await compare('--data-dir', dataDir, '--baseline', '7.1.*', '--candidate', 'slow-7.1.*', '--format', 'json');
    const fromStore = JSON.parse(r.stdout) as Comparison;
    const direct = JSON.parse(JSON.stringify(compareKernels(strataOf(a, '7.1.*'), strataOf(asKernel(b, 'slow-', 1.2), 'slow-7.1.*'))));
    expect(fromStore).toEqual(direct);
    expect(fromStore.baseline.findings.certain + fromStore.candidate.findings.certain).toBeGreaterThan(0);
  });

  it('prints a table with the verdict and why', async () => {
    const r = await compare('--data-dir', dataDir, '--baseline', '6.12.*', '--candidate', 'slow-6.12.*');
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('Verdict: REGRESSION');
    expect(r.stdout).toMatch(/regression: revoke p50 ×1\.\d+ \[/);
    expect(r.stdout).toContain('Findings per 1000 episodes by stratum');
  });

  it('input errors exit 2 with the reason: no match, overlapping selections, an empty time range, a missing store', async () => {
    const none = await compare('--data-dir', dataDir, '--baseline', '9.9.*', '--candidate', 'slow-6.12.*');
    expect([none.code, none.stderr]).toEqual([2, 'revokescope compare: no episodes of baseline kernel "9.9.*" in the store\n']);
    const both = await compare('--data-dir', dataDir, '--baseline', '*6.12.*', '--candidate', 'slow-6.12.*');
    expect(both.code).toBe(2);
    expect(both.stderr).toMatch(/matches both --baseline and --candidate/);
    const old = await compare('--data-dir', dataDir, '--baseline', '6.12.*', '--candidate', 'slow-6.12.*', '--to', '2020-01-01T00:00:00Z');
    expect(old.code).toBe(2);
    expect(old.stderr).toMatch(/no episodes of baseline kernel/);
    const recent = await compare('--data-dir', dataDir, '--baseline', '6.12.*', '--candidate', 'slow-6.12.*', '--from', 'now-1h', '--format', 'json');
    expect(recent.code).toBe(1); // the fleet was written 10 minutes ago
  });
});

describe('from two traces', () => {
  let fileA: string, fileB: string;
  beforeAll(async () => {
    fileA = join(dir, 'a.pb');
    fileB = join(dir, 'b.jsonl');
    const small = { hosts: 40, durationNs: 60e9 };
    await writeTrace(fileA, new FleetSimulator({ ...small, seed: 7 }).batches());
    await writeTrace(fileB, new FleetSimulator({ ...small, seed: 8 }).batches());
  }, 300_000);

  it('the same era in two fleets: no regression, exit 0', async () => {
    const r = await compare('--baseline-trace', fileA, '--candidate-trace', fileB, '--baseline', '6.12.*', '--candidate', '6.12.*', '--format', 'json');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const c = JSON.parse(r.stdout) as Comparison;
    expect(c.verdict).not.toBe('regression');
    expect(c.baseline.hosts).toBe(8);
  });

  it('6.19 (DMABUF revokes, importers) against 6.12 in one trace: a regression, exit 1', async () => {
    const r = await compare('--baseline-trace', fileA, '--candidate-trace', fileA, '--baseline', '6.12.*', '--candidate', '6.19.*');
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('Verdict: REGRESSION');
    expect(r.stdout).toMatch(/regression: revoke p90 ×\d/);
  });

  it('usage errors exit 2', async () => {
    for (const [argv, message] of [
      [[], /give --baseline KERNEL and --candidate KERNEL/],
      [['--baseline-trace', 'x.pb'], /give both --baseline-trace and --candidate-trace/],
      [['--baseline', 'a', '--candidate', 'b', '--alpha', '0.7'], /--alpha must be a number in \(0, 0.5\)/],
      [['--baseline', 'a', '--candidate', 'b', '--format', 'csv'], /--format must be table, json, got 'csv'/],
      [['--baseline', 'a', '--candidate', 'b', '--from', 'yesterday'], /--from must be an RFC 3339 time/],
      [['--baseline', 'a', '--candidate', 'b', '--max-samples', '5'], /--max-samples must be an integer/],
      [['--baseline-trace', 'x', '--candidate-trace', 'y', '--from', 'now-1h'], /--from and --to apply to the store/],
      [['--nope'], /unknown option '--nope'/],
    ] as [string[], RegExp][]) {
      const r = await compare(...argv);
      expect(r.code, argv.join(' ')).toBe(2);
      expect(r.stderr).toMatch(message);
    }
    const missing = await compare('--baseline-trace', join(dir, 'missing.pb'), '--candidate-trace', fileA);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/missing\.pb/);
  });
});

describe('the command line', () => {
  it('revokescope lists compare and prints its help (exit 0)', async () => {
    const main = ['--import', 'tsx', 'services/cli/main.ts'];
    const list = await promisify(execFile)(process.execPath, [...main, '--help']);
    expect(list.stdout).toMatch(/^ {2}compare +kernel A\/B/m);
    const help = await promisify(execFile)(process.execPath, [...main, 'compare', '--help']);
    expect(help.stdout).toContain('usage: revokescope compare --baseline KERNEL --candidate KERNEL');
    expect(help.stdout).toContain('1 a significant');
  });
});
