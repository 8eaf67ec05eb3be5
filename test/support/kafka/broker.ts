// Node wrapper around broker.sh: start/stop a real single-node Kafka broker for tests and benchmarks.
import { execFile } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const script = join(dirname(fileURLToPath(import.meta.url)), 'broker.sh');

export interface BrokerHandle {
  /** host:port of the PLAINTEXT listener on 127.0.0.1. */
  bootstrap: string;
  pid: number;
  stateDir: string;
}

/** broker.sh exit codes: 3 = tool missing under CI=true (a failure), 4 = tool missing elsewhere (skip). */
export class BrokerUnavailable extends Error {
  constructor(message: string, readonly exitCode: number) {
    super(message);
  }
}

function runScript(args: string[], timeoutMs = 300_000): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('bash', [script, ...args], { timeout: timeoutMs, maxBuffer: 4 << 20 }, (err, stdout, stderr) => {
      if (err) {
        const code = typeof err.code === 'number' ? err.code : 1;
        const msg = `broker.sh ${args[0]} failed (exit ${code}): ${stderr.trim().split('\n').slice(-15).join('\n')}`;
        reject(code === 3 || code === 4 ? new BrokerUnavailable(msg, code) : new Error(msg));
      } else resolve(stdout);
    });
  });
}

function parseState(out: string): BrokerHandle {
  const kv = Object.fromEntries(
    out.split('\n').filter((l) => l.includes('=')).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  );
  if (!kv.BOOTSTRAP || !kv.PID) throw new Error(`broker.sh printed no state: ${out}`);
  return { bootstrap: kv.BOOTSTRAP, pid: Number(kv.PID), stateDir: kv.STATE_DIR };
}

/**
 * Start a broker. Without `stateDir` a fresh temp dir is used (new ports, empty logs); with the `stateDir`
 * of a stopped broker it restarts on the same port with the same data (outage tests).
 */
export async function start(opts: { stateDir?: string } = {}): Promise<BrokerHandle> {
  const stateDir = opts.stateDir ?? mkdtempSync(join(tmpdir(), 'revokescope-kafka-'));
  return parseState(await runScript(['start', '--state-dir', stateDir]));
}

/** Stop by PID; `purge` (default true) removes config, logs and data. */
export async function stop(handle: Pick<BrokerHandle, 'stateDir'>, opts: { purge?: boolean } = {}): Promise<void> {
  const args = ['stop', '--state-dir', handle.stateDir];
  if (opts.purge ?? true) args.push('--purge');
  await runScript(args, 60_000);
}

/** Resolve the broker jars only (no broker). */
export async function fetchBroker(): Promise<void> {
  await runScript(['fetch']);
}
