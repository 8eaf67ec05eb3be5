// What the pipeline needs from a store (docs/design.md §5). One implementation over @clickhouse/client serves both
// the embedded chDB default and a ClickHouse server URL.
import type { Episode, EventBatch, Finding } from '../core/model.js';
import type { BatchScan } from '../core/wire.js';

/** Collector health sample for one host (docs/design.md §5 host_health; §7 the agent reports its own rates). */
export interface HostHealth {
  hostname: string;
  bootId: string;
  kernelRelease: string;
  collectorVersion: string;
  capabilities: string[];
  /** When this sample was taken (wall clock, ms since epoch). */
  observedAtMs: number;
  events: number;
  dropped: number;
  /** Sequence gaps + dropped as seen by the correlator. */
  lost: number;
  /** Consumer lag in messages (fleet mode), 0 in embedded mode. */
  lag: number;
  lastTsNs: number;
  /** The collector's clock (EventBatch.now_ns) when it cut its newest batch, heartbeats included (0: not sent). */
  nowNs?: number;
}

/** A boot as a batch shows it: host, boot id and the ts of the batch's first event. */
export interface BootSeen { hostname: string; bootId: string; tsNs: number }

export interface EventStore {
  /** Create or upgrade the schema; safe to call at every start. */
  migrate(): Promise<void>;
  /** Raw events of a decoded batch (rows keyed by hostname, boot_id, seq: re-ingest is idempotent). */
  writeBatch(batch: EventBatch): Promise<void>;
  /** The same rows from a batch read by the wire scan (core/wire.ts), without decoding it; the scan must stay
   * as it is until the promise settles. */
  writeScan(scan: BatchScan): Promise<void>;
  writeEpisodes(episodes: Episode[]): Promise<void>;
  writeFindings(findings: Finding[]): Promise<void>;
  writeHostHealth(rows: HostHealth[]): Promise<void>;
  /** Push buffered rows to ClickHouse and wait until they are written (durable). */
  flush(): Promise<void>;
  close(): Promise<void>;
}
