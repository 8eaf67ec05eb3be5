// What long-running commands share: signals and the progress line.
import type { PipelineStats } from '../pipeline/pipeline.js';

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
