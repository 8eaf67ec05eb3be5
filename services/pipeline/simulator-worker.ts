// The fleet simulator on its own thread: generates EventBatches, encodes them as the collectors would
// (protobuf), and hands the bytes to the main thread in chunks of many batches. The main thread only
// decodes, correlates and stores, so the two cores split the work. Flow control is a credit counter in
// shared memory: the worker blocks (Atomics.wait) while the main thread holds `credits` chunks it has not
// yet passed to the bus, so memory stays bounded however long the run.
import { parentPort, workerData } from 'node:worker_threads';
import { simulateFleet } from '../../collectors/simulator/index.js';
import { BatchEncoder } from './batch-encoder.js';

export interface SimulatorWorkerData {
  hosts: number; durationNs: number; seed: number;
  /** Int32Array over a SharedArrayBuffer: [0] credits left, [1] stop requested. */
  control: SharedArrayBuffer;
  chunkBytes: number;
}

/** One chunk: batches i = 0..n-1 are bytes[ends[i-1] ?? 0, ends[i]), keyed by hostname keys[i]. */
export interface EncodedChunkMessage { bytes: Uint8Array; ends: Uint32Array; keys: string[]; events: number }

/** Encodes batches into chunks of about `chunkBytes` (shared by the worker and the in-thread fallback). */
export function* encodeChunks(batches: Iterable<import('../core/model.js').EventBatch>, chunkBytes: number): Generator<EncodedChunkMessage> {
  const w = new BatchEncoder(chunkBytes + 64 * 1024);
  let ends: number[] = [];
  let keys: string[] = [];
  let events = 0;
  const take = (): EncodedChunkMessage => {
    const chunk = { bytes: w.take(), ends: Uint32Array.from(ends), keys, events };
    ends = []; keys = []; events = 0;
    return chunk;
  };
  for (const b of batches) {
    w.encode(b);
    ends.push(w.length);
    keys.push(b.host?.hostname ?? '');
    events += b.events?.length ?? 0;
    if (w.length >= chunkBytes) yield take();
  }
  if (ends.length > 0) yield take();
}

if (parentPort && workerData && (workerData as { kind?: string }).kind === 'revokescope-simulator') {
  const d = workerData as SimulatorWorkerData;
  const ctl = new Int32Array(d.control);
  const port = parentPort;
  try {
    for (const chunk of encodeChunks(simulateFleet({ hosts: d.hosts, durationNs: d.durationNs, seed: d.seed, truth: false }), d.chunkBytes)) {
      while (Atomics.load(ctl, 0) <= 0 && Atomics.load(ctl, 1) === 0) Atomics.wait(ctl, 0, Atomics.load(ctl, 0), 1000);
      if (Atomics.load(ctl, 1) !== 0) break;
      Atomics.sub(ctl, 0, 1);
      // the chunk's memory moves to the main thread when it owns its ArrayBuffer (large writes do)
      const own = chunk.bytes.byteOffset === 0 && chunk.bytes.byteLength === chunk.bytes.buffer.byteLength;
      port.postMessage({ chunk }, own ? [chunk.bytes.buffer as ArrayBuffer, chunk.ends.buffer as ArrayBuffer] : [chunk.ends.buffer as ArrayBuffer]);
    }
    port.postMessage({ done: true });
  } catch (err) {
    port.postMessage({ error: err instanceof Error ? `${err.message}\n${err.stack ?? ''}` : String(err) });
  }
}
