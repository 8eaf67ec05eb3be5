// Reports over correlator outputs: the summary object and its terminal table.
export { summarize, SummaryBuilder, findingKindNames, severityNames, type Summary, type SummaryStats, type DeviceFindings,
  type HistogramBucket, type LatencyStats } from './summary.js';
export { latencyStats, nearestRank } from './percentiles.js';
export { renderTable, formatNs, bar, type TableOptions } from './table.js';
