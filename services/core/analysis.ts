// Whole-trace analysis: run the correlator over every batch and collect its outputs. Pure.
import { Correlator, type CorrelatorOptions, type CorrelatorStats } from './correlator/index.js';
import type { Episode, EventBatch, Finding } from './model.js';

export interface Analysis { episodes: Episode[]; findings: Finding[]; stats: CorrelatorStats }

export function analyzeBatches(batches: Iterable<EventBatch>, opts: Partial<CorrelatorOptions> = {}): Analysis {
  const c = new Correlator(opts);
  const episodes: Episode[] = [];
  const findings: Finding[] = [];
  for (const b of batches) {
    c.ingest(b);
    for (const e of c.takeEpisodes()) episodes.push(e);
    for (const f of c.takeFindings()) findings.push(f);
  }
  c.finish();
  episodes.push(...c.takeEpisodes());
  findings.push(...c.takeFindings());
  return { episodes, findings, stats: c.stats };
}

export async function analyzeStream(batches: AsyncIterable<EventBatch>, opts: Partial<CorrelatorOptions> = {}): Promise<Analysis> {
  const c = new Correlator(opts);
  const episodes: Episode[] = [];
  const findings: Finding[] = [];
  for await (const b of batches) {
    c.ingest(b);
    for (const e of c.takeEpisodes()) episodes.push(e);
    for (const f of c.takeFindings()) findings.push(f);
  }
  c.finish();
  episodes.push(...c.takeEpisodes());
  findings.push(...c.takeFindings());
  return { episodes, findings, stats: c.stats };
}
