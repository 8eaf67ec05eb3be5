// Building Finding records (DESIGN §4 table). Pure.
import { stableId } from '../ids.js';
import { FindingKind, Severity, type Finding, type FindingKind as FindingKindT, type Severity as SeverityT } from '../model.js';
import type { HostContext } from './context.js';

export function makeFinding(
  ctx: HostContext, device: string, driver: string, kind: FindingKindT, severity: SeverityT,
  tsNs: number, episodeId: string, evidence: Record<string, unknown>, inconclusive: boolean,
): Finding {
  return {
    findingId: stableId(FindingKind[kind], ctx.hostname, ctx.bootId, device, episodeId, tsNs),
    kind, severity, hostname: ctx.hostname, bootId: ctx.bootId, device, driver,
    kernelRelease: ctx.kernelRelease, episodeId, tsNs, inconclusive, evidence: JSON.stringify(evidence),
  };
}

export const severityRank: Record<SeverityT, number> = {
  [Severity.SEVERITY_UNSPECIFIED]: 0, [Severity.INFO]: 1, [Severity.WARNING]: 2, [Severity.CRITICAL]: 3,
};
