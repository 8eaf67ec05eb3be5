// The options table (issue 15, issue 16 item 6): one integer and one duration parser with one meaning for bare
// numbers; every setting validated at start, a bad value a usage error (exit 2) naming the flag or the variable.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { duration, integer, parseCommand, UsageError } from '../services/cli/options.js';
import { apiOptions, storeOptions } from '../services/cli/settings.js';

const CLI = join(process.cwd(), 'dist/services/cli/main.js');
const cli = (args: string[], env: NodeJS.ProcessEnv = {}) =>
  spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { PATH: process.env.PATH, ...env }, timeout: 60_000 });

describe('parsers', () => {
  it('durations: units, and a bare number is seconds everywhere', () => {
    const d = duration();
    expect(d('2s', 'x')).toBe(2e9);
    expect(d('50ms', 'x')).toBe(50e6);
    expect(d('500us', 'x')).toBe(500e3);
    expect(d('500µs', 'x')).toBe(500e3);
    expect(d('1000ns', 'x')).toBe(1000);
    expect(d('1.5s', 'x')).toBe(1.5e9);
    expect(d('2m', 'x')).toBe(120e9);
    expect(d('60', 'x')).toBe(60e9);
    for (const bad of ['', '-1s', 's', '2 fortnights', '1e3', '2sec', ' 2s', 'Infinity', '0x10']) {
      expect(() => d(bad, '--duration'), bad).toThrow(/--duration must be a duration/);
    }
    expect(() => duration({ min: 1e6, max: 1e9 })('2s', '--x')).toThrow(/--x must be a duration 1ms\.\.1s/);
  });

  it('integers: decimal only, in range, naming where the value came from', () => {
    const i = integer(0, 100);
    expect(i('42', '--n')).toBe(42);
    for (const bad of ['abc', '0.5', '1e2', '0x10', '-5', ' 5', 'Infinity', '', '101', '3000000000']) {
      expect(() => i(bad, 'REVOKESCOPE_N'), bad).toThrow(/^REVOKESCOPE_N must be an integer 0\.\.100, got/);
    }
  });

  it('flags win over the environment, which wins over the default; unknown flags are usage errors', () => {
    const o = parseCommand(['--data-dir', '/flag'], storeOptions, { REVOKESCOPE_DATA_DIR: '/env', REVOKESCOPE_CLICKHOUSE_DATABASE: 'db2' });
    expect(o.values).toMatchObject({ dataDir: '/flag', database: 'db2' });
    expect(o.from).toMatchObject({ dataDir: '--data-dir', database: 'REVOKESCOPE_CLICKHOUSE_DATABASE', cluster: 'default' });
    expect(() => parseCommand(['--nope'], storeOptions, {})).toThrow(UsageError);
    expect(() => parseCommand([], storeOptions, { REVOKESCOPE_CLICKHOUSE_DATABASE: 'a-b' })).toThrow(/REVOKESCOPE_CLICKHOUSE_DATABASE must be a plain identifier/);
  });

  it('the settings the hardening review found unchecked are refused, naming the variable', () => {
    for (const [name, value] of [['REVOKESCOPE_EVALUATION_INTERVAL_MS', 'abc'], ['REVOKESCOPE_EVALUATION_INTERVAL_MS', '0.5'],
      ['REVOKESCOPE_EVALUATION_INTERVAL_MS', '3000000000'], ['REVOKESCOPE_EVALUATION_INTERVAL_MS', '-1'],
      ['REVOKESCOPE_API_BODY_LIMIT', '-1'], ['REVOKESCOPE_API_RATE_LIMIT', '-1'], ['REVOKESCOPE_API_LATENCY_CACHE_MS', '1e3'],
      ['REVOKESCOPE_WEBHOOK_URLS', 'ftp://x'], ['REVOKESCOPE_ALERTMANAGER_URL', 'not a url']] as const) {
      expect(() => parseCommand([], apiOptions, { [name]: value }), `${name}=${value}`).toThrow(new RegExp(`^${name} `));
    }
  });
});

describe('commands exit 2 naming the bad setting', () => {
  it.each([
    [['serve'], { REVOKESCOPE_EVALUATION_INTERVAL_MS: 'abc' }, /REVOKESCOPE_EVALUATION_INTERVAL_MS must be an integer/],
    [['serve'], { REVOKESCOPE_API_BODY_LIMIT: '-1' }, /REVOKESCOPE_API_BODY_LIMIT must be an integer/],
    [['serve', '--port', '70000'], {}, /--port must be an integer 0\.\.65535/],
    [['serve'], { REVOKESCOPE_API_HOST: '' }, /REVOKESCOPE_API_HOST is empty/],
    [['run', '--hosts', '-5'], {}, /--hosts must be an integer 1\.\.100000, got '-5'/],
    [['run', '--duration', 'forever'], {}, /--duration must be a duration/],
    [['simulate', '--out', '/tmp/x.jsonl', '--duration', '0'], {}, /--duration must be a duration/],
    [['correlate'], {}, /Kafka brokers are required/],
    [['correlate', '--kafka', 'h:1', '--commit-interval', 'soon'], {}, /--commit-interval must be a duration/],
    [['analyze', 'x.pb', '--lateness', '-1s'], {}, /--lateness must be a duration/],
    [['run', '--log-level', 'loud'], {}, /--log-level must be fatal, error, warn, info, debug, trace, silent/],
  ] as const)('%j %j', (args, env, why) => {
    const r = cli([...args], env);
    expect(r.status, r.stderr).toBe(2);
    expect(r.stderr).toMatch(why);
  });

  it('simulate --duration 60 is 60 seconds, as run --duration 60 is', () => {
    const out = join(process.cwd(), `.cache/options-test-${process.pid}.jsonl`);
    const r = cli(['simulate', '--out', out, '--hosts', '1', '--duration', '60', '--no-faults']);
    expect(r.status, r.stderr).toBe(0);
    const truth = JSON.parse(spawnSync('cat', [`${out}.truth.json`], { encoding: 'utf8' }).stdout) as { hosts: { startTsNs: number }[] };
    expect(truth.hosts).toHaveLength(1);
    spawnSync('rm', ['-f', out, `${out}.truth.json`]);
  });
});
