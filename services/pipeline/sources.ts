// Where the embedded pipeline's EventBatches come from: the fleet simulator or a recorded trace file.
import type { EventBatch } from '../core/model.js';
import { readTrace, type TraceReader } from '../trace/index.js';

export interface SimulatorSourceOptions { hosts: number; durationNs: number; seed: number }

/** The fleet simulator (collectors/simulator), batches in the order collectors would send them. */
export async function simulatorSource(o: SimulatorSourceOptions): Promise<AsyncIterable<EventBatch>> {
  const { simulateFleet } = await import('../../collectors/simulator/index.js');
  return toAsyncIterable(simulateFleet({ hosts: o.hosts, durationNs: o.durationNs, seed: o.seed }));
}

/** A trace file (.jsonl, .pb, or `-` for stdin), streamed with bounded memory. */
export function traceSource(file: string): TraceReader {
  return readTrace(file);
}

/** Accepts what a source may hand back: an (async) iterable of batches, or an object carrying `batches`. */
export function toAsyncIterable(x: unknown): AsyncIterable<EventBatch> {
  const o = x as { batches?: unknown; [Symbol.asyncIterator]?: unknown; [Symbol.iterator]?: unknown };
  if (o && typeof o[Symbol.asyncIterator] === 'function') return o as AsyncIterable<EventBatch>;
  if (o && typeof o[Symbol.iterator] === 'function') {
    const it = o as Iterable<EventBatch>;
    return { async *[Symbol.asyncIterator]() { yield* it; } };
  }
  if (o && o.batches !== undefined) return toAsyncIterable(o.batches);
  throw new Error('source is not an iterable of EventBatch');
}
