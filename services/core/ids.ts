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

/** 64-bit id as 16 hex digits from the parts (two independently seeded 32-bit lanes, finalised). */
export function stableId(...parts: (string | number)[]): string {
  let a = 0x811c9dc5;
  let b = 0x9747b28c;
  for (const p of parts) {
    const s = typeof p === 'number' ? String(p) : p;
    a = mix32(a, s); a = mix32(a, '\u0001');
    b = mix32(b ^ 0x5bd1e995, s); b = mix32(b, '\u0002');
  }
  return fmix32(a).toString(16).padStart(8, '0') + fmix32(b ^ a).toString(16).padStart(8, '0');
}
