// Durations on the command line: `2s`, `50ms`, `500us` (or `500µs`), `1000ns`, `1.5s`, `2m`, `1h`, or a
// plain number in `bareUnit` (nanoseconds unless a command says otherwise). Returns whole nanoseconds.
// The one parser of every command (analyze's limits, run's --duration, collect's --duration).

export class DurationError extends Error {
  override readonly name = 'DurationError';
}

const UNIT_NS: Record<string, number> = { ns: 1, us: 1e3, 'µs': 1e3, 'μs': 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 };
const DURATION = /^(\d+(?:\.\d*)?|\.\d+)\s*(ns|us|µs|μs|ms|s|m|h)?$/;

export function parseDuration(text: string, what = 'duration', bareUnit: 'ns' | 's' = 'ns'): number {
  const m = DURATION.exec(text.trim());
  if (!m) {
    throw new DurationError(`bad ${what} ${JSON.stringify(text)}: expected e.g. 2s, 50ms, 500us, 1000ns or a number of ${bareUnit}`);
  }
  const ns = Math.round(Number(m[1]) * UNIT_NS[m[2] ?? bareUnit]!);
  if (!Number.isSafeInteger(ns)) throw new DurationError(`bad ${what} ${JSON.stringify(text)}: too large`);
  return ns;
}
