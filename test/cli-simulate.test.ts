// `revokescope simulate`: trace + FILE.truth.json, either format, deterministic; analyze on its output.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { run as analyze } from '../services/cli/commands/analyze.js';
import { run as simulate } from '../services/cli/commands/simulate.js';
import { batchToJson, readTrace } from '../services/trace/index.js';

const dir = mkdtempSync(join(tmpdir(), 'revokescope-sim-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

class Capture extends Writable {
  text = '';
  override _write(chunk: Buffer, _enc: string, cb: () => void): void { this.text += chunk.toString(); cb(); }
}

async function cli(cmd: typeof simulate, ...argv: string[]) {
  const stdout = new Capture();
  const stderr = new Capture();
  const code = await cmd(argv, { stdout, stderr });
  return { code, stdout: stdout.text, stderr: stderr.text };
}

async function jsonOf(file: string) {
  const out: unknown[] = [];
  for await (const b of readTrace(file)) out.push(batchToJson(b));
  return out;
}

describe('simulate', () => {
  it('writes .pb and .jsonl with the same content, deterministically, plus FILE.truth.json', async () => {
    const pb = join(dir, 'fleet.pb');
    const jsonl = join(dir, 'fleet.jsonl');
    const again = join(dir, 'again.pb');
    const common = ['--hosts', '5', '--duration', '40s', '--seed', '11'];
    const r = await cli(simulate, ...common, '--out', pb);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^wrote \d+ batches, \d+ events of 5 hosts to .*fleet\.pb/);
    expect((await cli(simulate, ...common, '--out', jsonl)).code).toBe(0);
    expect((await cli(simulate, ...common, '--out', again)).code).toBe(0);
    expect(readFileSync(again).equals(readFileSync(pb))).toBe(true);
    const a = await jsonOf(pb);
    expect(a.length).toBeGreaterThan(10);
    expect(await jsonOf(jsonl)).toEqual(a);
    const truth = JSON.parse(readFileSync(`${pb}.truth.json`, 'utf8'));
    expect(truth.seed).toBe(11);
    expect(truth.hosts).toHaveLength(5);
    expect(truth.findings.length).toBeGreaterThan(0);
    expect(readFileSync(`${jsonl}.truth.json`, 'utf8')).toBe(readFileSync(`${pb}.truth.json`, 'utf8'));

    // analyze reports as many findings as were injected (the simulator's tests check them one by one)
    const out = await cli(analyze, pb, '--format', 'json');
    expect(out.code).toBe(0);
    expect(JSON.parse(out.stdout).summary.findings.total).toBe(truth.findings.length);
    expect((await cli(analyze, pb, '--fail-on', 'info')).code).toBe(1);
  });

  it('--no-faults: a fleet with no finding', async () => {
    const file = join(dir, 'clean.pb');
    expect((await cli(simulate, '--hosts', '5', '--duration', '20s', '--seed', '2', '--no-faults', '--out', file)).code).toBe(0);
    expect(JSON.parse(readFileSync(`${file}.truth.json`, 'utf8')).findings).toEqual([]);
    const r = await cli(analyze, file, '--fail-on', 'info');
    expect(r.code, r.stdout).toBe(0);
    expect(r.stdout).toMatch(/findings\s+0 /);
  });

  it('usage errors exit 2 with one line', async () => {
    for (const argv of [[], ['--out', join(dir, 'x.csv')], ['--out', '-'], ['--out', join(dir, 'y.pb'), '--hosts', '0'],
      ['--out', join(dir, 'y.pb'), '--hosts', 'many'], ['--out', join(dir, 'y.pb'), '--duration', '0'],
      ['--out', join(dir, 'y.pb'), '--duration', 'soon'], ['--out', join(dir, 'y.pb'), 'extra']]) {
      const r = await cli(simulate, ...argv);
      expect(r.code, argv.join(' ')).toBe(2);
      expect(r.stderr).toMatch(/^revokescope simulate: .+\n$/);
    }
    expect((await cli(simulate, '--help')).stdout).toContain('usage: revokescope simulate');
  });

  it('an unwritable output: exit 2 naming the file', async () => {
    const r = await cli(simulate, '--hosts', '1', '--duration', '10s', '--out', join(dir, 'no/dir/f.pb'));
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/no\/dir\/f\.pb: cannot write/);
  });
});
