// Wall-clock times on the command line (export-trace --from/--to): RFC 3339 (2026-03-01T12:00:00Z), milliseconds
// since the epoch, `now`, or a duration before now (`now-15m`, `now-2h`, `now-1.5s`; durations as options.ts's
// duration parser, a bare number being seconds).
import { duration, UsageError, type Parser } from './options.js';

const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/;
/** The last millisecond a DateTime64(9) column holds (2262-04-11T23:47:16.854Z). */
const MAX_MS = 9_223_372_036_854;
const ago = duration();

/** Milliseconds since the epoch; `nowMs` is what `now` means. */
export function wallTime(nowMs: number): Parser<number> {
  return (text, name) => {
    const t = text.trim();
    let ms: number;
    if (t === 'now') ms = nowMs;
    else if (/^[0-9]+$/.test(t)) ms = Number(t);
    else if (t.startsWith('now-')) ms = nowMs - ago(t.slice(4), name) / 1e6;
    else if (RFC3339.test(t)) ms = Date.parse(t);
    else throw new UsageError(`${name} must be an RFC 3339 time (2026-03-01T12:00:00Z), epoch milliseconds, now, or now-DURATION (now-15m), got '${text}'`);
    if (!Number.isFinite(ms) || ms < 0 || ms > MAX_MS) throw new UsageError(`${name} is out of range (1970 to 2262), got '${text}'`);
    return Math.floor(ms);
  };
}
