// Helpers shared by `revokescope run` and `revokescope serve`: store flags, durations, signals, progress.
import { parseDuration as parseCliDuration } from '../cli/duration.js';
import type { PipelineStats } from './pipeline.js';

export class UsageError extends Error {}

/** Flags of every command that opens the store (parseArgs options). */
export const storeFlags = {
  'data-dir': { type: 'string' },
  'clickhouse-url': { type: 'string' },
  'clickhouse-user': { type: 'string' },
  'clickhouse-password': { type: 'string' },
  'clickhouse-database': { type: 'string' },
  cluster: { type: 'string' },
} as const;

/** --duration of run: 60 → 60 s; also 500ms, 10s, 2m, 1h (services/cli/duration.ts), at most 30 days. */
export function parseDuration(v: string): number {
  let ns: number;
  try { ns = parseCliDuration(v, '--duration', 's'); } catch (err) { throw new UsageError((err as Error).message); }
  if (!(ns > 0) || ns > 30 * 24 * 3600e9) throw new UsageError(`--duration must be > 0 and at most 30 days, got '${v}'`);
  return ns;
}

/** SIGINT/SIGTERM call onStop once; a second signal exits at once (130). */
export function onSignals(onStop: () => void): { dispose(): void } {
  let seen = 0;
  const handler = (sig: NodeJS.Signals) => {
    seen++;
    if (seen === 1) {
      process.stderr.write(`\n${sig}: stopping — writing what was read (again to quit at once)\n`);
      onStop();
    } else {
      process.exit(130);
    }
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  return { dispose() { process.off('SIGINT', handler); process.off('SIGTERM', handler); } };
}

export function waitForSignal(signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((r) => signal.addEventListener('abort', () => r(), { once: true }));
}

const k = (n: number): string => (n >= 1e6 ? `${(n / 1e6).toFixed(2)}M` : n >= 1e4 ? `${(n / 1e3).toFixed(1)}k` : String(n));

export function progressLine(s: PipelineStats, queueDepth: number, startedAt: number): string {
  const secs = Math.max((performance.now() - startedAt) / 1000, 1e-3);
  const f = s.findingsBySeverity;
  return `events ${k(s.events)} (${k(Math.round(s.events / secs))}/s) · episodes ${k(s.episodes)} · findings ` +
    `critical ${f.CRITICAL ?? 0} warning ${f.WARNING ?? 0} info ${f.INFO ?? 0} · queue ${queueDepth}`;
}
