// Reports over correlator outputs: the summary object and its terminal table.
export { summarize, SummaryBuilder, type GroupHistograms, findingKindNames, severityNames, openLockSummaries, type Summary, type SummaryStats, type DeviceFindings,
  type OpenLockSummary,
  type HistogramBucket, type LatencyStats } from './summary.js';
export { latencyStats, nearestRank } from './percentiles.js';
export { renderTable, formatNs, bar, type TableOptions } from './table.js';
