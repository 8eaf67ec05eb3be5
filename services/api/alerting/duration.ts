// Prometheus-style durations for rules: "0s", "30s", "5m", "1h30m", "2d", "500ms". Returns ms.
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };
export const DURATION_PATTERN = '^((\\d+)(ms|s|m|h|d|w))+$';
const PART = /(\d+)(ms|s|m|h|d|w)/g;

export function parseDurationMs(text: string): number {
  if (!new RegExp(DURATION_PATTERN).test(text)) throw new Error(`bad duration ${JSON.stringify(text)}: expected e.g. 0s, 30s, 5m, 1h30m`);
  let ms = 0;
  for (const m of text.matchAll(PART)) ms += Number(m[1]) * UNIT_MS[m[2]!]!;
  if (!Number.isSafeInteger(ms) || ms > 366 * UNIT_MS.d!) throw new Error(`duration ${JSON.stringify(text)} is longer than a year`);
  return ms;
}
