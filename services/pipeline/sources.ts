// Where the embedded pipeline's EventBatches come from: the fleet simulator or a recorded trace file.
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { EventBatch } from '../core/model.js';
import { readTrace, type TraceReader } from '../trace/index.js';
import type { TransportMessage } from '../transport/types.js';
import type { EncodedChunkMessage, SimulatorWorkerData } from './simulator-worker.js';

export interface SimulatorSourceOptions {
  hosts: number; durationNs: number; seed: number;
  /** Generate and encode on a worker thread (default: when running from built JS). */
  worker?: boolean;
}

/** Encoded EventBatches ready for the transport, many per chunk, with their event count. */
export interface EncodedChunk { messages: TransportMessage[]; events: number }

/** A source that can hand over batches already encoded (the pipeline then skips its own encode). */
export interface EncodedSource { encoded(): AsyncIterable<EncodedChunk> }

export function isEncodedSource(x: unknown): x is EncodedSource {
  return typeof (x as Partial<EncodedSource> | null)?.encoded === 'function';
}

const CHUNK_BYTES = 256 * 1024;
/** Chunks the worker may have in flight (posted, not yet handed to the bus): bounds memory. */
const CREDITS = 4;

/** The fleet simulator (collectors/simulator), batches in the order collectors would send them. As an
 * EncodedSource it runs on a worker thread and yields protobuf bytes; iterated directly it yields batches. */
export async function simulatorSource(o: SimulatorSourceOptions): Promise<AsyncIterable<EventBatch> & EncodedSource> {
  const { simulateFleet } = await import('../../collectors/simulator/index.js');
  const workerUrl = new URL('./simulator-worker.js', import.meta.url);
  // From TypeScript sources (tests under vitest/tsx) there is no built worker file: encode in this thread.
  const useWorker = (o.worker ?? true) && import.meta.url.endsWith('.js');
  return {
    [Symbol.asyncIterator]: () => toAsyncIterable(simulateFleet({ hosts: o.hosts, durationNs: o.durationNs, seed: o.seed, truth: false }))[Symbol.asyncIterator](),
    encoded: () => (useWorker ? workerChunks(workerUrl, o) : inThreadChunks(o)),
  };
}

function toMessages(c: EncodedChunkMessage): EncodedChunk {
  const messages: TransportMessage[] = new Array(c.ends.length);
  let start = 0;
  for (let i = 0; i < c.ends.length; i++) {
    const end = c.ends[i]!;
    messages[i] = { key: c.keys[i]!, value: c.bytes.subarray(start, end) };
    start = end;
  }
  return { messages, events: c.events };
}

async function* inThreadChunks(o: SimulatorSourceOptions): AsyncGenerator<EncodedChunk> {
  const { simulateFleet } = await import('../../collectors/simulator/index.js');
  const { encodeChunks } = await import('./simulator-worker.js');
  for (const c of encodeChunks(simulateFleet({ hosts: o.hosts, durationNs: o.durationNs, seed: o.seed, truth: false }), CHUNK_BYTES)) yield toMessages(c);
}

async function* workerChunks(url: URL, o: SimulatorSourceOptions): AsyncGenerator<EncodedChunk> {
  const control = new SharedArrayBuffer(8);
  const ctl = new Int32Array(control);
  ctl[0] = CREDITS;
  const data: SimulatorWorkerData & { kind: string } = {
    kind: 'revokescope-simulator', hosts: o.hosts, durationNs: o.durationNs, seed: o.seed, control, chunkBytes: CHUNK_BYTES,
  };
  // A larger young generation for the simulator: its pending events (held until their batch closes) survive a
  // default-sized nursery's scavenges and get copied and promoted; with 64 MB most die young. Measured on a
  // 500-host × 300 s run (--trace-gc): the worker's GC 89 scavenges + 10 mark-compacts, 0.77 s → 73 + 1, 0.26 s.
  const worker = new Worker(fileURLToPath(url), { workerData: data, resourceLimits: { maxYoungGenerationSizeMb: 64 } });
  const queue: ({ chunk: EncodedChunkMessage } | { done: true } | { error: string })[] = [];
  let wake: (() => void) | undefined;
  let exited = false;
  const push = (m: (typeof queue)[number]) => { queue.push(m); const w = wake; wake = undefined; w?.(); };
  worker.on('message', (m) => push(m));
  worker.on('error', (err) => push({ error: err.message }));
  worker.on('exit', (code) => { exited = true; push(code === 0 ? { done: true } : { error: `simulator worker exited with code ${code}` }); });
  try {
    for (;;) {
      if (queue.length === 0) await new Promise<void>((r) => { wake = r; });
      const m = queue.shift()!;
      if ('error' in m) throw new Error(`simulator worker: ${m.error}`);
      if ('done' in m) return;
      yield toMessages(m.chunk);
      // the consumer took the chunk (the bus accepted its messages): the worker may make another
      Atomics.add(ctl, 0, 1);
      Atomics.notify(ctl, 0);
    }
  } finally {
    Atomics.store(ctl, 1, 1);
    Atomics.notify(ctl, 0);
    if (!exited) await worker.terminate();
  }
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
