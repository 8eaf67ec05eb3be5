// Prometheus' amtool (and, for the push test, alertmanager itself) built from the Go module proxy into
// .cache/ (gitignored) on first use, then reused. Outside CI a missing Go toolchain skips with a printed
// reason; with CI=true it is a failure.
import { execFile, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';

export const ALERTMANAGER_VERSION = 'v0.28.1';
const ROOT = resolve(import.meta.dirname, '..', '..');
const run = promisify(execFile);

export interface Tool { path?: string; reason?: string }

/** Build (once) cmd/<name> of github.com/prometheus/alertmanager@ALERTMANAGER_VERSION into .cache/. */
export function ensureGoTool(name: 'amtool' | 'alertmanager'): Tool {
  const dir = join(ROOT, '.cache', `${name}-${ALERTMANAGER_VERSION}`);
  const bin = join(dir, name);
  if (existsSync(bin)) return { path: bin };
  const go = spawnSync('go', ['version'], { encoding: 'utf8' });
  if (go.status !== 0) {
    const reason = `go toolchain not found: cannot build ${name} ${ALERTMANAGER_VERSION}`;
    if (process.env.CI === 'true') throw new Error(reason);
    return { reason };
  }
  mkdirSync(dir, { recursive: true });
  const r = spawnSync('go', ['install', `github.com/prometheus/alertmanager/cmd/${name}@${ALERTMANAGER_VERSION}`], {
    encoding: 'utf8', env: { ...process.env, GOBIN: dir, CGO_ENABLED: '0' }, timeout: 900_000,
  });
  if (r.status !== 0 || !existsSync(bin)) {
    const reason = `go install ${name}@${ALERTMANAGER_VERSION} failed: ${(r.stderr || r.error?.message || '').slice(-2000)}`;
    if (process.env.CI === 'true') throw new Error(reason);
    return { reason };
  }
  return { path: bin };
}

export interface AmtoolResult { code: number; stdout: string; stderr: string }

/** Run amtool against an Alertmanager-compatible URL; never throws on a non-zero exit. */
export async function amtool(bin: string, url: string, args: string[], opts: { httpConfigFile?: string } = {}): Promise<AmtoolResult> {
  const full = [...args, `--alertmanager.url=${url}`, '--timeout=20s'];
  if (opts.httpConfigFile) full.push(`--http.config.file=${opts.httpConfigFile}`);
  try {
    const { stdout, stderr } = await run(bin, full, { timeout: 60_000, env: { ...process.env, USER: 'amtool-test' } });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof err.code === 'number' ? err.code : 1, stdout: err.stdout ?? '', stderr: err.stderr ?? String(e) };
  }
}
