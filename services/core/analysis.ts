// Whole-trace analysis: run the correlator over every batch and collect its outputs. Pure.
import { Correlator, type CorrelatorOptions, type CorrelatorStats } from './correlator/index.js';
import type { Episode, EventBatch, Finding } from './model.js';

export interface Analysis { episodes: Episode[]; findings: Finding[]; stats: CorrelatorStats }

class Collected {
  readonly c: Correlator;
  readonly episodes: Episode[] = [];
  readonly findings: Finding[] = [];
  constructor(opts: Partial<CorrelatorOptions>) { this.c = new Correlator(opts); }
  add(b: EventBatch): void {
    this.c.ingest(b);
    this.take();
  }
  addBytes(frame: Uint8Array): void {
    this.c.ingestBytes(frame);
    this.take();
  }
  private take(): void {
    for (const e of this.c.takeEpisodes()) this.episodes.push(e);
    for (const f of this.c.takeFindings()) this.findings.push(f);
  }
  done(): Analysis {
    this.c.finish();
    this.take();
    return { episodes: this.episodes, findings: this.findings, stats: this.c.stats };
  }
}

export function analyzeBatches(batches: Iterable<EventBatch>, opts: Partial<CorrelatorOptions> = {}): Analysis {
  const run = new Collected(opts);
  for (const b of batches) run.add(b);
  return run.done();
}

/** The same analysis from encoded EventBatches (the correlator's from-bytes path). */
export function analyzeFrames(frames: Iterable<Uint8Array>, opts: Partial<CorrelatorOptions> = {}): Analysis {
  const run = new Collected(opts);
  for (const f of frames) run.addBytes(f);
  return run.done();
}

export async function analyzeStream(batches: AsyncIterable<EventBatch>, opts: Partial<CorrelatorOptions> = {}): Promise<Analysis> {
  const run = new Collected(opts);
  for await (const b of batches) run.add(b);
  return run.done();
}
