// A small seeded generator for statistical tests (mulberry32): repeatable draws from uniform, normal and lognormal
// distributions, so a calibration test sees the same samples on every run.
export class Prng {
  private s: number;
  constructor(seed: number) { this.s = seed >>> 0; }
  /** Uniform in (0, 1). */
  next(): number {
    this.s = (this.s + 0x6d2b79f5) >>> 0;
    let t = this.s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) + 0.5) / 4294967296;
  }
  int(lo: number, hi: number): number { return lo + Math.floor(this.next() * (hi - lo + 1)); }
  /** Standard normal (Box–Muller). */
  normal(): number { return Math.sqrt(-2 * Math.log(this.next())) * Math.cos(2 * Math.PI * this.next()); }
  lognormal(median: number, sigma: number): number { return median * Math.exp(sigma * this.normal()); }
}
