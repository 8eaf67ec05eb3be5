// Every revokescope dashboard: its spec (for tests) and the file it is committed as.
import { dashboard, type DashboardSpec } from './builder.js';
import { collectorHealth } from './collector-health.js';
import { deviceDrilldown } from './device-drilldown.js';
import { fleetOverview } from './fleet-overview.js';
import { kernelRollout } from './kernel-rollout.js';

export const DASHBOARDS: { file: string; spec: DashboardSpec }[] = [
  { file: 'fleet-overview.json', spec: fleetOverview },
  { file: 'kernel-rollout.json', spec: kernelRollout },
  { file: 'device-drilldown.json', spec: deviceDrilldown },
  { file: 'collector-health.json', spec: collectorHealth },
];

export function buildAll(): { file: string; json: Record<string, unknown> }[] {
  return DASHBOARDS.map(({ file, spec }) => ({ file, json: dashboard(spec) }));
}
