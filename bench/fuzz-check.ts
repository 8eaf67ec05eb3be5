// One fuzz input through every reader of its format (bench/fuzz.ts runs these in a worker thread):
//   .pb frames   analyze's reader (TraceReader.scans, lenient) → correlator; the pipeline's partition stage (the Kafka
//                and embedded paths) over the same frames; per frame the wire reader against protobufjs +
//                validateBatch; and the correlator fed protobufjs' objects of the frames both accept. Analyze and the
//                stage must skip/dead-letter the same frames and give the same episodes and findings; the wire reader
//                must accept nothing protobufjs + validateBatch reject, and where both accept, the same batch.
//   .pb files    (framing damaged too) analyze's reader, lenient and strict: only TraceErrors, bounded time.
//   .jsonl       analyze's reader → correlator; every batch it accepts, encoded, must pass the wire reader.
//   ftrace,      the collector's line parsers and decoder via replayRaw (as `collect --raw` captures are replayed) →
//   bpftrace     batches that validateBatch and the wire reader must accept → correlator.
// An exception other than the documented rejections is a crash; a difference above is a disagreement.
import { Readable } from 'node:stream';
import { replayRaw } from '../collectors/agent/replay.js';
import { Correlator } from '../services/core/correlator/index.js';
import { v1, type EventBatch } from '../services/core/model.js';
import { FieldError, validateBatch } from '../services/core/validate.js';
import { BatchScan, WireError } from '../services/core/wire.js';
import { HostHealthTracker } from '../services/pipeline/health.js';
import { PartitionStage } from '../services/pipeline/stage.js';
import { TraceError } from '../services/trace/errors.js';
import { readTrace } from '../services/trace/reader.js';
import type { FuzzInput } from './fuzz-inputs.js';

export interface Checked {
  /** What was thrown where nothing may be thrown. */
  crash?: string;
  /** Where two readers (or paths) disagree. */
  disagreement?: string;
  /** Counts by outcome class (accepted, rejected by reason class, wire stricter than protobufjs by reason, ...). */
  classes: string[];
}

interface Outputs { episodes: string[]; findings: string[] }

const scan = new BatchScan();
const header = new BatchScan();

function take(c: Correlator, o: Outputs): void {
  for (const e of c.takeEpisodes()) o.episodes.push(e.episodeId);
  for (const f of c.takeFindings()) o.findings.push(f.findingId);
}
function done(c: Correlator, o: Outputs): Outputs {
  c.finish();
  take(c, o);
  return { episodes: o.episodes.sort(), findings: o.findings.sort() };
}
const same = (a: Outputs, b: Outputs): boolean =>
  a.episodes.length === b.episodes.length && a.findings.length === b.findings.length &&
  a.episodes.every((x, i) => x === b.episodes[i]) && a.findings.every((x, i) => x === b.findings[i]);
const stdin = (bytes: Uint8Array) => Readable.from([Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)]);
/** A rejection's reason without its numbers and quoted values: a class to count. */
export const reasonClass = (m: string): string => m.replace(/"[^"]*"|'[^'\s]*'/g, '…').replace(/\d+/g, 'N').replace(/\[N\]/g, '').slice(0, 140);
const describe = (e: unknown): string => (e instanceof Error ? `${e.name}: ${e.message}\n${e.stack?.split('\n').slice(1, 6).join('\n') ?? ''}` : String(e));

/** analyze's path over a .pb file: the reader's checked scans into the correlator. */
async function analyzePb(bytes: Uint8Array, lenient: boolean): Promise<Outputs & { skipped: number }> {
  const reader = readTrace('-', { format: 'pb', lenient, stdin: stdin(bytes) });
  const c = new Correlator();
  const o: Outputs = { episodes: [], findings: [] };
  for await (const s of reader.scans()) { c.ingestScan(s); take(c, o); }
  return { ...done(c, o), skipped: reader.stats.skipped };
}

async function checkPb(input: FuzzInput): Promise<Checked> {
  const frames = input.frames!;
  const classes: string[] = [];
  // per frame: the wire reader against protobufjs + validateBatch
  const decoded: (EventBatch | undefined)[] = [];
  for (const f of frames) {
    let wire: string | undefined, pj: string | undefined, batch: EventBatch | undefined;
    try { scan.read(f); } catch (e) {
      if (!(e instanceof WireError) && !(e instanceof FieldError)) return { crash: `wire reader: ${describe(e)}`, classes };
      wire = e.message;
    }
    try { batch = v1.EventBatch.decode(f); validateBatch(batch); } catch (e) { pj = (e as Error).message; batch = undefined; }
    if (wire === undefined && pj !== undefined) return { disagreement: `the wire reader accepts a frame protobufjs + validateBatch reject (${pj})`, classes };
    if (wire !== undefined && pj === undefined) classes.push(`wire stricter: ${reasonClass(wire)}`);
    else if (wire !== undefined) classes.push(`frame rejected: ${reasonClass(wire)}`);
    else {
      classes.push('frame accepted');
      // both accept: the same batch (header, and per event its ts and body)
      const b = batch!;
      const evs = b.events ?? [];
      if (scan.count !== evs.length || scan.firstSeq !== Number(b.firstSeq ?? 0) || scan.dropped !== Number(b.dropped ?? 0) ||
        (scan.host?.hostname ?? '') !== (b.host?.hostname ?? '') || evs.some((e, i) => Number(e.tsNs ?? 0) !== scan.ts[i])) {
        return { disagreement: 'the wire reader and protobufjs read a frame differently (count, seq, dropped, host or ts)', classes };
      }
    }
    decoded.push(wire === undefined ? batch : undefined);
  }
  // analyze's reader over the framed file
  const a = await analyzePb(input.bytes, true);
  // the pipeline's partition stage over the frames (key = the frame's hostname, as a collector keys it)
  const c = new Correlator();
  const st = new PartitionStage(0, 0, 0, c, new HostHealthTracker(() => 0));
  const o: Outputs = { episodes: [], findings: [] };
  let deadLetters = 0;
  frames.forEach((value, i) => {
    let key = '';
    try { key = header.readHeader(value).host?.hostname ?? ''; } catch { /* unreadable: dead-lettered anyway */ }
    const r = st.handle({ key, value, offset: String(i), partition: 0 });
    if (r.deadLetter) {
      deadLetters++;
      if (r.deadLetter.class === 'internal error') throw new Error(`stage: ${r.deadLetter.text}`);
    }
    take(c, o);
  });
  const s = done(c, o);
  if (a.skipped !== deadLetters) return { disagreement: `analyze skipped ${a.skipped} records, the pipeline stage dead-lettered ${deadLetters}`, classes };
  if (!same(a, s)) return { disagreement: 'analyze and the pipeline stage found different episodes or findings in the same frames', classes };
  // the correlator over protobufjs' objects of the accepted frames
  const d = new Correlator();
  const od: Outputs = { episodes: [], findings: [] };
  for (const b of decoded) if (b) { d.ingest(b); take(d, od); }
  if (!same(done(d, od), s)) return { disagreement: 'the correlator gives different outputs from protobufjs objects and from the wire scan', classes };
  return { classes };
}

async function checkPbFile(input: FuzzInput): Promise<Checked> {
  const classes: string[] = [];
  const lenient = await analyzePb(input.bytes, true);
  classes.push(lenient.skipped > 0 ? 'file: records skipped' : 'file: read whole');
  try { await analyzePb(input.bytes, false); } catch (e) {
    if (!(e instanceof TraceError)) return { crash: `analyze (strict): ${describe(e)}`, classes };
    classes.push(`file rejected (strict): ${reasonClass(e.reason)}`);
  }
  return { classes };
}

async function checkJsonl(input: FuzzInput): Promise<Checked> {
  const classes: string[] = [];
  const reader = readTrace('-', { format: 'jsonl', lenient: true, stdin: stdin(input.bytes), onSkip: (e) => classes.push(`line rejected: ${reasonClass(e.reason)}`) });
  const c = new Correlator();
  const o: Outputs = { episodes: [], findings: [] };
  for await (const b of reader) {
    const frame = v1.EventBatch.encode(b).finish();
    try { scan.read(frame); } catch (e) {
      return { disagreement: `the .jsonl reader accepts a batch whose protobuf the wire reader rejects (${(e as Error).message})`, classes };
    }
    classes.push('line accepted');
    c.ingest(b);
    take(c, o);
  }
  done(c, o);
  return { classes };
}

function checkRaw(input: FuzzInput): Checked {
  const classes: string[] = [];
  let batches: EventBatch[];
  try {
    ({ batches } = replayRaw(Buffer.from(input.bytes).toString('utf8'), { hostname: 'fuzz-host', bootId: 'fuzz-boot' }));
  } catch (e) {
    if (e instanceof Error && /^(not a revokescope raw capture|bad revokescope raw header)/.test(e.message)) return { classes: [`capture rejected: ${reasonClass(e.message)}`] };
    return { crash: `replayRaw: ${describe(e)}`, classes };
  }
  const c = new Correlator();
  const o: Outputs = { episodes: [], findings: [] };
  for (const b of batches) {
    try { validateBatch(b); scan.read(v1.EventBatch.encode(b).finish()); } catch (e) {
      return { disagreement: `the collector's decoder made a batch the readers reject (${(e as Error).message})`, classes };
    }
    classes.push(`capture decoded: ${b.events?.length ? 'events' : 'no events'}`);
    c.ingest(b);
    take(c, o);
  }
  done(c, o);
  return { classes };
}

/** Runs one input through its readers; a throw from the readers themselves is caught and reported as a crash. */
export async function checkInput(input: FuzzInput): Promise<Checked> {
  try {
    switch (input.kind) {
      case 'pb': return await checkPb(input);
      case 'pb-file': return await checkPbFile(input);
      case 'jsonl': return await checkJsonl(input);
      default: return checkRaw(input);
    }
  } catch (e) {
    return { crash: describe(e), classes: [] };
  }
}
