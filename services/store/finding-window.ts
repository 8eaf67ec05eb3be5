// Read side of finding_events (schema migration 6): a finding, its episode and the window of raw events kept with it,
// with the host facts a replay needs (kernel release, probe capabilities from host_health). Values are query parameters.
import { EXPLAIN_LIMITS, stackIdsOf, type SeqEvent } from '../core/finding-window.js';
import { Capability, type Capability as CapabilityT, type Episode, type Finding } from '../core/model.js';
import { episodeFromJson, findingFromJson } from '../trace/json.js';
import { eventFromRow } from './event-rows.js';
import { EPISODE_ROW_SELECT, EVENT_ROW_SELECT, FINDING_ROW_SELECT, ISO, type StoreReader } from './queries.js';
import { TABLES } from './schema.js';

export interface StoredFindingWindow {
  finding: Finding;
  episode: Episode | null;
  /** The kept events, in (ts, seq) order. */
  events: SeqEvent[];
  /** The copy reached EXPLAIN_LIMITS.maxEvents (older events of the window were left out). */
  capped: boolean;
  kernelRelease: string;
  /** The host's newest capabilities (host_health); empty when the store has no health row for the boot. */
  capabilities: CapabilityT[];
  /** The kernel stacks the window names (its events', the episode's acquire, the evidence's) that kernel_stacks has. */
  stacks: Map<number, string[]>;
}

/** The stored window of finding `findingId`, or undefined when no such finding is stored. */
export async function readFindingWindow(reader: StoreReader, findingId: string): Promise<StoredFindingWindow | undefined> {
  const table = (name: string): string => `${reader.database}.${name}`;
  const rows = async <T>(query: string, params: Record<string, unknown>): Promise<T[]> =>
    (await reader.client.query({ query, query_params: params, format: 'JSONEachRow', clickhouse_settings: ISO })).json<T>();
  // one query at a time: embedded chDB runs one per connection
  const [f] = await rows<Record<string, unknown>>(`
      SELECT ${FINDING_ROW_SELECT}
      FROM ${table(TABLES.findings)} FINAL WHERE finding_id = {id:String} LIMIT 1`, { id: findingId });
  if (!f) return undefined;
  const finding = findingFromJson(f);
  let episode: Episode | null = null;
  if (finding.episodeId) {
    const [e] = await rows<Record<string, unknown>>(`
      SELECT ${EPISODE_ROW_SELECT}
      FROM ${table(TABLES.episodes)} FINAL
      WHERE episode_id = {episode:String} AND hostname = {host:String} AND boot_id = {boot:String} AND device = {device:String}
      LIMIT 1`, { episode: finding.episodeId, host: finding.hostname, boot: finding.bootId, device: finding.device });
    if (e) episode = episodeFromJson(e);
  }
  const eventRows = await rows<Record<string, unknown>>(`
      SELECT ${EVENT_ROW_SELECT}
      FROM ${table(TABLES.findingEvents)} FINAL WHERE finding_id = {id:String}
      ORDER BY ts_ns, seq`, { id: findingId });
  const events = eventRows.map((r) => { const { seq, event } = eventFromRow(r); return { seq, event }; });
  const [h] = await rows<{ capabilities: string[] }>(`
      SELECT capabilities FROM ${table(TABLES.hostHealth)} FINAL
      WHERE hostname = {host:String} AND boot_id = {boot:String} AND length(capabilities) > 0
      ORDER BY observed_at DESC LIMIT 1`, { host: finding.hostname, boot: finding.bootId });
  const names = Capability as unknown as Record<string, number | undefined>;
  const capabilities = (h?.capabilities ?? []).map((c) => names[c]).filter((c): c is CapabilityT => c !== undefined);
  const stacks = await reader.kernelStacks(finding.hostname, finding.bootId, stackIdsOf(events, episode, finding));
  return { finding, episode, events, capped: events.length >= EXPLAIN_LIMITS.maxEvents, kernelRelease: finding.kernelRelease, capabilities, stacks };
}
