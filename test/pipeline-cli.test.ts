// `revokescope run` as users run it: the built CLI (npm run build first), a real chDB data dir, real HTTP.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from './store-fixtures.js';

const CLI = 'dist/services/cli/main.js';
const tmp = tempDir('revokescope-run-');

beforeAll(() => {
  if (!existsSync(CLI) || !existsSync('dist/services/cli/commands/run.js')) throw new Error(`${CLI} is missing: run \`npm run build\` first`);
});
afterAll(() => tmp.remove());

function runCli(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 120_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('revokescope run', () => {
  it('--duration 10 exits 0 with a summary, and a second start reuses the data dir', async () => {
    const first = runCli(['run', '--duration', '10', '--hosts', '20', '--data-dir', tmp.dir, '--no-api']);
    expect(first.stderr).toBe('');
    expect(first.status).toBe(0);
    expect(first.stdout).toMatch(/Findings by kind/);
    expect(first.stdout).toMatch(/events in [\d.]+ s/);
    const again = runCli(['run', '--duration', '10', '--hosts', '20', '--data-dir', tmp.dir, '--no-api']);
    expect(again.status).toBe(0);
    // same seed, same fleet: deduplicated counts are unchanged by the second run
    const total = (out: string) => /^episodes\s+([\d,]+ \(revoke [\d,]+)/m.exec(out)?.[1];
    expect(total(first.stdout)).toMatch(/^[1-9]/);
    expect(total(again.stdout)).toBe(total(first.stdout));
  });

  it('--serve answers episodes, findings and latency over HTTP until SIGINT, then exits 0', async () => {
    const child = spawn(process.execPath, [CLI, 'run', '--duration', '10', '--data-dir', `${tmp.dir}/serve`, '--serve', '--port', '0'],
      { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => { stdout += d; });
    child.stderr.on('data', (d) => { stderr += d; });
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    try {
      const url = await new Promise<string>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`no API line:\n${stdout}\n${stderr}`)), 90_000);
        const poll = setInterval(() => {
          const m = /API: (http:\/\/127\.0\.0\.1:\d+)/.exec(stdout);
          if (m) { clearInterval(poll); clearTimeout(t); resolve(m[1]!); }
        }, 100);
      });
      const episodes = await (await fetch(`${url}/api/v1/episodes?limit=10`)).json() as { episodes: unknown[] };
      expect(episodes.episodes.length).toBe(10);
      const findings = await (await fetch(`${url}/api/v1/findings?severity=CRITICAL`)).json() as { findings: { severity: string }[] };
      expect(findings.findings.length).toBeGreaterThan(0);
      const latency = await (await fetch(`${url}/api/v1/latency?group_by=kernel`)).json() as { rows: { count: number }[] };
      expect(latency.rows.length).toBeGreaterThan(1);
      const bad = await fetch(`${url}/api/v1/findings?limit=-1`);
      expect(bad.status).toBe(400);
    } finally {
      child.kill('SIGINT');
    }
    expect(await exited).toBe(0);
  });

  it('usage errors exit 2 with one clear line', () => {
    const r = runCli(['run', '--hosts', 'many']);
    expect(r.status).toBe(2);
    expect(r.stderr.trim()).toBe("revokescope run: --hosts must be an integer 1..100000, got 'many'");
    const schema = runCli(['run', '--print-schema', '--cluster', 'fleet']);
    expect(schema.status).toBe(0);
    expect(schema.stdout).toContain('ENGINE = Distributed(fleet, revokescope, events_local, cityHash64(hostname))');
    // every table, the alerting and the pipeline's bookkeeping included, shared across the cluster
    for (const t of ['alerting_rules', 'alerting_alerts', 'alerting_silences', 'alerting_notifications', 'alerting_lease',
      'correlator_checkpoints', 'dlq_events']) {
      expect(schema.stdout).toContain(`CREATE TABLE IF NOT EXISTS revokescope.${t} ON CLUSTER fleet`);
      expect(schema.stdout).toMatch(new RegExp(`Replicated\\w*MergeTree\\('/clickhouse/tables/all/revokescope/${t}'`));
    }
    const single = runCli(['run', '--print-schema']);
    expect(single.stdout).toMatch(/CREATE TABLE IF NOT EXISTS revokescope\.alerting_rules\n/);
  });
});
