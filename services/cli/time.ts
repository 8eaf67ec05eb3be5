// Wall-clock times on the command line (export-trace --from/--to): RFC 3339 (2026-03-01T12:00:00Z), milliseconds
// since the epoch, `now`, or a duration before now (`now-15m`, `now-2h`, `now-1.5s`; durations as services/cli/duration.ts).
import { DurationError, parseDuration } from './duration.js';

export class TimeError extends Error {
  override readonly name = 'TimeError';
}

const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/;
/** The last millisecond a DateTime64(9) column holds (2262-04-11T23:47:16.854Z). */
const MAX_MS = 9_223_372_036_854;

/** Milliseconds since the epoch. */
export function parseWallTime(text: string, flag: string, nowMs: number = Date.now()): number {
  const t = text.trim();
  let ms: number;
  if (t === 'now') ms = nowMs;
  else if (/^[0-9]+$/.test(t)) ms = Number(t);
  else if (t.startsWith('now-')) {
    try {
      ms = nowMs - parseDuration(t.slice(4), flag) / 1e6;
    } catch (e) {
      if (e instanceof DurationError) throw new TimeError(e.message);
      throw e;
    }
  } else if (RFC3339.test(t)) ms = Date.parse(t);
  else throw new TimeError(`bad ${flag} ${JSON.stringify(text)}: expected an RFC 3339 time (2026-03-01T12:00:00Z), epoch milliseconds, now, or now-DURATION (now-15m)`);
  if (!Number.isFinite(ms) || ms < 0 || ms > MAX_MS) throw new TimeError(`bad ${flag} ${JSON.stringify(text)}: out of range (1970 to 2262)`);
  return Math.floor(ms);
}
