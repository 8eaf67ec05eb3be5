// Deterministic ids: the same events always give the same episode and finding ids, so a replay after a crash
// rewrites the same ReplacingMergeTree rows instead of adding new ones. Pure; no crypto needed (not a secret).

function mix32(h: number, s: string): number {
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193); // FNV-1a prime
  }
  return h >>> 0;
}

function fmix32(h: number): number {
  h ^= h >>> 16; h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13; h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Hash state after some leading parts; reuse it when many ids share them (e.g. host, boot, device). */
export interface IdPrefix { a: number; b: number }

export const emptyPrefix: IdPrefix = { a: 0x811c9dc5, b: 0x9747b28c };

export function extendId(prefix: IdPrefix, ...parts: (string | number)[]): IdPrefix {
  let a = prefix.a, b = prefix.b;
  for (const p of parts) {
    const s = typeof p === 'number' ? String(p) : p;
    a = mix32(a, s); a = mix32(a, '\u0001');
    b = mix32(b ^ 0x5bd1e995, s); b = mix32(b, '\u0002');
  }
  return { a, b };
}

/** 64-bit id as 16 hex digits (two independently seeded 32-bit lanes, finalised). */
export function idOf(prefix: IdPrefix, ...parts: (string | number)[]): string {
  const { a, b } = parts.length > 0 ? extendId(prefix, ...parts) : prefix;
  return hex16(fmix32(a), fmix32((b ^ a) >>> 0));
}

/** Character codes of the hex digits. */
const HEX = Uint8Array.from('0123456789abcdef', (c) => c.charCodeAt(0));

/** x then y as 16 hex digits: one flat string (concatenating pieces makes a tree of cons strings, several allocations). */
function hex16(x: number, y: number): string {
  return String.fromCharCode(HEX[x >>> 28]!, HEX[(x >>> 24) & 15]!, HEX[(x >>> 20) & 15]!, HEX[(x >>> 16) & 15]!,
    HEX[(x >>> 12) & 15]!, HEX[(x >>> 8) & 15]!, HEX[(x >>> 4) & 15]!, HEX[x & 15]!,
    HEX[y >>> 28]!, HEX[(y >>> 24) & 15]!, HEX[(y >>> 20) & 15]!, HEX[(y >>> 16) & 15]!,
    HEX[(y >>> 12) & 15]!, HEX[(y >>> 8) & 15]!, HEX[(y >>> 4) & 15]!, HEX[y & 15]!);
}

/** Id of (prefix, n) for a non-negative integer n < 2^53, mixing its two 32-bit halves directly: the
 * per-episode hot path (no string conversion, no intermediate objects). */
export function idOfNumber(prefix: IdPrefix, n: number): string {
  const lo = n >>> 0;
  const hi = Math.floor(n / 4294967296) >>> 0;
  let a = Math.imul(prefix.a ^ lo, 0x01000193);
  a = Math.imul(a ^ hi, 0x01000193);
  let b = Math.imul(prefix.b ^ 0x5bd1e995 ^ hi, 0x01000193);
  b = Math.imul(b ^ lo, 0x01000193);
  return hex16(fmix32(a), fmix32((b ^ a) >>> 0));
}

export function stableId(...parts: (string | number)[]): string {
  return idOf(emptyPrefix, ...parts);
}
