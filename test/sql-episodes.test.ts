// The episode metrics of docs/rules.md computed a second way, as ClickHouse SQL with window functions over the raw
// events in chDB, must agree with the correlator on a simulated fleet (issue 2; timed in bench/sql-episodes.ts).
import { describe, expect, it } from 'vitest';
import { benchSqlEpisodes } from '../bench/sql-episodes.js';

describe('episodes as SQL over raw events', () => {
  it('agree with the correlator on every episode of a simulated fleet (kernels ≥ 6.11)', async () => {
    const r = await benchSqlEpisodes({ hosts: 10, durationNs: 30e9, seed: 3 });
    expect(r.episodesCompared).toBeGreaterThan(500);
    expect(r.mismatches).toBe(0);
  });
});
