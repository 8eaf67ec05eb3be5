// Schema-driven fuzzing of the whole API with schemathesis (PyPI, installed into .cache/ on first use)
// against /openapi.json: zero 5xx and zero responses that violate their declared schema. Bounded examples
// per operation keep it to about a minute. Outside CI a missing python3 skips with a printed reason.
import { execFile, spawnSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import type { ClickHouseClient } from '@clickhouse/client';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { storeWithFleet } from './support/api-fixtures.js';
import { securityFromEnv, startApi, type TestApi } from './support/api-server.js';

const ROOT = resolve(import.meta.dirname, '..');
const VENV = join(ROOT, '.cache', 'schemathesis-venv');
const BIN = join(VENV, 'bin', 'schemathesis');
const ADMIN = 'fuzz-admin-token-0123456789';

function ensureSchemathesis(): { path?: string; reason?: string } {
  if (existsSync(BIN)) return { path: BIN };
  const py = spawnSync('python3', ['-m', 'venv', VENV], { encoding: 'utf8' });
  const pip = py.status === 0 ? spawnSync(join(VENV, 'bin', 'pip'), ['install', '-q', 'schemathesis'], { encoding: 'utf8', timeout: 600_000 }) : py;
  if (pip.status !== 0 || !existsSync(BIN)) {
    const reason = `cannot install schemathesis (python3 -m venv + pip): ${(pip.stderr || pip.error?.message || '').slice(-500)}`;
    if (process.env.CI === 'true') throw new Error(reason);
    return { reason };
  }
  return { path: BIN };
}

const tool = ensureSchemathesis();
let client: ClickHouseClient;
let api: TestApi;

beforeAll(async () => {
  if (!tool.path) return;
  ({ client } = await storeWithFleet(Date.now()));
  api = await startApi(client, { security: securityFromEnv({ REVOKESCOPE_API_TOKENS: `admin:${ADMIN}` }, { rateLimitMax: 0 }) });
  await api.engine.evaluate();
});
afterAll(async () => { await api?.app.close(); await client?.close(); });

if (!tool.path) console.warn(`skipping the schemathesis fuzz tests: ${tool.reason}`);

async function fuzz(include: string, examples: string, log: string): Promise<{ code: number; out: string }> {
  const args = ['run', `${api.url}/openapi.json`, '--checks', 'not_a_server_error,response_schema_conformance,status_code_conformance',
    '-H', `Authorization: Bearer ${ADMIN}`, '--max-examples', process.env.FUZZ_EXAMPLES ?? examples, '--seed', '20260115',
    '--phases', 'examples,coverage,fuzzing', '--workers', '2', '--request-timeout', '10', '--no-color', '--generation-database', 'none',
    '--max-time', '60', '--include-path-regex', include];
  const res = await promisify(execFile)(tool.path!, args, { timeout: 120_000, maxBuffer: 64 << 20 }).then(
    (r) => ({ code: 0, out: r.stdout + r.stderr }),
    (e: { code?: number; stdout?: string; stderr?: string }) => ({ code: e.code ?? 1, out: `${e.stdout ?? ''}${e.stderr ?? ''}` }));
  writeFileSync(join(ROOT, '.cache', log), res.out);
  if (res.code !== 0) console.error(res.out.replace(/(\?|&)[^ '\n]{300,}/g, ' [long query cut]').slice(-6000));
  return res;
}

// alerting, security, operations and hosts (services/api/{alerting,security,observability,resources})
(tool.path ? it : it.skip)('schemathesis: no 5xx and no schema violation in the alerting and operations API', async () => {
  const res = await fuzz('^/(api/v2/|api/v1/(rules|alerts|notifications|hosts)|healthz|readyz|metrics)', '20', 'schemathesis-alerting.log');
  expect(res.out).toMatch(/test cases/i);
  expect(res.code).toBe(0);
}, 150_000);

// the store helper's read routes (services/api/routes/*): fuzzed the same way
(tool.path ? it : it.skip)('schemathesis: no 5xx and no schema violation in the read API (episodes, findings, latency)', async () => {
  const res = await fuzz('^/api/v1/(episodes|findings|latency)', '20', 'schemathesis-read.log');
  expect(res.out).toMatch(/test cases/i);
  expect(res.code).toBe(0);
}, 150_000);
