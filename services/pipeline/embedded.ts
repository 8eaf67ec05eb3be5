// The embedded pipeline: source → encode EventBatch → bus (bounded) → scan → store rows + correlator.
// The same stages as fleet mode with the in-process bus in place of Kafka, so the codec and the
// transport contract are exercised on every run. Each message is read once, by the wire scan (core/wire.ts):
// the store builds its rows from the scan and the correlator ingests the same scan, so no batch is ever
// decoded into objects. Bad messages are counted and skipped, never fatal.
import { Severity, v1, type EventBatch } from '../core/model.js';
import type { BootSeen, EventStore } from '../store/types.js';
import type { EventSink, EventSource } from '../transport/types.js';
import { BatchScan } from '../core/wire.js';
import { HostHealthTracker } from './health.js';
import { isEncodedSource, type EncodedSource } from './sources.js';

/** What the pipeline needs from the correlator (services/core/correlator). */
export interface CorrelatorLike {
  ingestScan(scan: BatchScan): void;
  finish(): void;
  takeEpisodes(): import('../core/model.js').Episode[];
  takeFindings(): import('../core/model.js').Finding[];
  readonly stats: { events: number; duplicateEvents: number; lostEvents: number; lateEvents: number; invalidEvents: number; batches: number };
}

export interface PipelineStats {
  startedAtMs: number;
  /** Batches and events the source produced (before the correlator's checks). */
  batches: number;
  events: number;
  episodes: number;
  revokeEpisodes: number;
  findings: number;
  findingsBySeverity: Record<string, number>;
  /** Messages that did not decode as an EventBatch (skipped and counted). */
  invalidMessages: number;
  /** Messages waiting in the bus. */
  queueDepth: number;
  /** The source ended (or was stopped) and everything was written. */
  done: boolean;
}

export interface PipelineOptions {
  /** Batches; a source that is also an EncodedSource (the simulator) hands over protobuf bytes instead. */
  source: AsyncIterable<EventBatch> | (AsyncIterable<EventBatch> & EncodedSource);
  store: EventStore;
  correlator: CorrelatorLike;
  bus: EventSink & EventSource & { readonly depth?: number };
  /** Aborting stops reading the source; what was read is still processed, flushed and written. */
  signal?: AbortSignal;
  /** Collector health rows are written this often (ms). Default 10 s. */
  healthIntervalMs?: number;
  now?: () => number;
}

interface BootPreparer { prepareBoots(boots: readonly BootSeen[]): Promise<void> }

const severityName = new Map<number, string>(Object.entries(Severity).filter(([, v]) => typeof v === 'number').map(([k, v]) => [v as number, k]));

export class EmbeddedPipeline {
  readonly stats: PipelineStats;
  private readonly health: HostHealthTracker;
  private readonly now: () => number;

  constructor(private readonly o: PipelineOptions) {
    this.now = o.now ?? Date.now;
    this.health = new HostHealthTracker(this.now);
    this.stats = {
      startedAtMs: this.now(), batches: 0, events: 0, episodes: 0, revokeEpisodes: 0, findings: 0,
      findingsBySeverity: { CRITICAL: 0, WARNING: 0, INFO: 0 }, invalidMessages: 0, queueDepth: 0, done: false,
    };
  }

  get queueDepth(): number { return this.o.bus.depth ?? 0; }

  async run(): Promise<PipelineStats> {
    const { bus, store, correlator, signal } = this.o;
    const healthEvery = this.o.healthIntervalMs ?? 10_000;
    let lastHealth = this.now();
    let consumerFailed = false;

    const produce = async (): Promise<void> => {
      try {
        const source = this.o.source;
        if (isEncodedSource(source)) {
          for await (const chunk of source.encoded()) {
            if (signal?.aborted || consumerFailed) break;
            this.stats.batches += chunk.messages.length;
            this.stats.events += chunk.events;
            await bus.send(chunk.messages);
          }
          return;
        }
        for await (const batch of source) {
          if (signal?.aborted || consumerFailed) break;
          this.stats.batches++;
          this.stats.events += batch.events?.length ?? 0;
          const value = v1.EventBatch.encode(batch).finish();
          await bus.send([{ key: batch.host?.hostname ?? '', value }]);
        }
      } finally {
        await bus.close();
      }
    };

    // a store may resolve what a whole delivery needs at once (ClickHouseStore: new boots' clock offsets)
    const prepare = (store as Partial<BootPreparer>).prepareBoots?.bind(store);
    const scan = new BatchScan();
    const boots: BootSeen[] = [];
    const consume = bus.run(async (messages) => {
      if (prepare) {
        // headers only (the events are skipped); a message that does not read is counted below
        boots.length = 0;
        for (const m of messages) {
          try { scan.readHeader(m.value); } catch { continue; }
          if (scan.count > 0) boots.push({ hostname: scan.host?.hostname ?? '', bootId: scan.host?.bootId ?? '', tsNs: scan.ts[0]! });
        }
        await prepare(boots);
      }
      for (const m of messages) {
        try {
          scan.read(m.value);
        } catch {
          this.stats.invalidMessages++;
          continue;
        }
        await store.writeScan(scan);
        // the correlator keeps (frame, offsets) of the events it buffers (wire.ts), nothing else of the scan
        correlator.ingestScan(scan);
        this.health.observeScan(scan);
      }
      await this.drainCorrelator();
      if (this.now() - lastHealth >= healthEvery) {
        lastHealth = this.now();
        await store.writeHostHealth(this.health.rows());
      }
    }).catch(async (err: unknown) => {
      consumerFailed = true;
      await bus.stop();
      throw err;
    });

    const [p, c] = await Promise.allSettled([produce(), consume]);
    if (c.status === 'rejected') throw c.reason;
    if (p.status === 'rejected') throw p.reason;
    correlator.finish();
    await this.drainCorrelator();
    await store.writeHostHealth(this.health.rows());
    await store.flush();
    this.stats.done = true;
    return this.stats;
  }

  private async drainCorrelator(): Promise<void> {
    const { store, correlator } = this.o;
    const episodes = correlator.takeEpisodes();
    const findings = correlator.takeFindings();
    this.stats.episodes += episodes.length;
    for (const e of episodes) if (e.revoke) this.stats.revokeEpisodes++;
    this.stats.findings += findings.length;
    for (const f of findings) {
      const s = severityName.get(f.severity ?? 0) ?? 'SEVERITY_UNSPECIFIED';
      this.stats.findingsBySeverity[s] = (this.stats.findingsBySeverity[s] ?? 0) + 1;
    }
    await store.writeEpisodes(episodes);
    await store.writeFindings(findings);
  }
}
