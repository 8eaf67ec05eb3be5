// Seeded pseudo-random numbers for the fleet simulator: sfc32 with splitmix-style seeding, so every
// host draws from its own stream and the fleet is identical for the same seed whatever the order of
// generation. No Math.random anywhere in the simulator.

/** Mix integers into a 32-bit seed (murmur3 finalizer over each part). */
export function mixSeed(...parts: number[]): number {
  let h = 0x9e3779b9;
  for (const p of parts) {
    let k = (Math.floor(p) ^ Math.floor(p / 2 ** 32)) >>> 0;
    k = Math.imul(k, 0xcc9e2d51); k = (k << 15) | (k >>> 17); k = Math.imul(k, 0x1b873593);
    h ^= k; h = (h << 13) | (h >>> 19); h = (Math.imul(h, 5) + 0xe6546b64) >>> 0;
  }
  h ^= h >>> 16; h = Math.imul(h, 0x85ebca6b); h ^= h >>> 13; h = Math.imul(h, 0xc2b2ae35); h ^= h >>> 16;
  return h >>> 0;
}

export class Rng {
  private a: number; private b: number; private c: number; private d: number;
  private spare: number | undefined;

  constructor(...seedParts: number[]) {
    this.a = mixSeed(...seedParts, 1); this.b = mixSeed(...seedParts, 2);
    this.c = mixSeed(...seedParts, 3); this.d = mixSeed(...seedParts, 4) | 1;
    for (let i = 0; i < 12; i++) this.u32();
  }

  u32(): number {
    const t = (((this.a + this.b) >>> 0) + this.d) >>> 0;
    this.d = (this.d + 1) >>> 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) >>> 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) >>> 0;
    return t;
  }

  /** Uniform in [0, 1). */
  float(): number { return this.u32() / 4294967296; }
  /** Uniform integer in [lo, hi]. */
  int(lo: number, hi: number): number { return lo + Math.floor(this.float() * (hi - lo + 1)); }
  /** Uniform real in [lo, hi). */
  range(lo: number, hi: number): number { return lo + this.float() * (hi - lo); }
  chance(p: number): boolean { return this.float() < p; }
  pick<T>(items: readonly T[]): T { return items[Math.floor(this.float() * items.length)]!; }

  normal(): number {
    if (this.spare !== undefined) { const s = this.spare; this.spare = undefined; return s; }
    let u = 0; while (u === 0) u = this.float();
    const v = this.float();
    const r = Math.sqrt(-2 * Math.log(u));
    this.spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  }

  /** Log-normal with the given median; sigma is the spread of ln(x). Clipped to [lo, hi]. */
  lognormal(median: number, sigma: number, lo = 0, hi = Infinity): number {
    const x = median * Math.exp(sigma * this.normal());
    return Math.min(hi, Math.max(lo, x));
  }

  /** Integer nanoseconds from a log-normal, at least 1. */
  ns(median: number, sigma: number, lo = 1, hi = Infinity): number {
    return Math.max(1, Math.round(this.lognormal(median, sigma, lo, hi)));
  }

  /** A short step between two kernel calls: uniform in [median / 2, 3 median / 2), at least 1 ns. One draw, no
   * transcendental functions: the hot paths take several per episode. */
  gap(median: number): number { return Math.max(1, Math.floor(median * (0.5 + this.float()))); }

  exp(mean: number): number { let u = 0; while (u === 0) u = this.float(); return -Math.log(u) * mean; }

  weighted<T extends string>(weights: Readonly<Partial<Record<T, number>>>): T {
    return this.weightedTable(weightTable(weights));
  }

  /** A pick by weight from a table made once by weightTable() (hot paths; weighted() makes one per call). */
  weightedTable<T extends string>(t: WeightTable<T>): T {
    let x = this.float() * t.total;
    let last: T | undefined;
    for (let i = 0; i < t.keys.length; i++) {
      const w = t.weights[i]!;
      if (w <= 0) continue;
      last = t.keys[i]!;
      if (x < w) return last;
      x -= w;
    }
    return last!;
  }

  /** A UUID-shaped string (boot_id), deterministic. */
  uuid(): string {
    const hex = (n: number) => n.toString(16).padStart(8, '0');
    const s = hex(this.u32()) + hex(this.u32()) + hex(this.u32()) + hex(this.u32());
    return `${s.slice(0, 8)}-${s.slice(8, 12)}-4${s.slice(13, 16)}-${((parseInt(s[16]!, 16) & 3) | 8).toString(16)}${s.slice(17, 20)}-${s.slice(20, 32)}`;
  }
}

/** weighted()'s input, its keys in for-in order, with the total summed in that order. */
export interface WeightTable<T extends string> { keys: T[]; weights: number[]; total: number }

export function weightTable<T extends string>(weights: Readonly<Partial<Record<T, number>>>): WeightTable<T> {
  const t: WeightTable<T> = { keys: [], weights: [], total: 0 };
  for (const k in weights) { const w = weights[k] ?? 0; t.keys.push(k); t.weights.push(w); t.total += w; }
  return t;
}
