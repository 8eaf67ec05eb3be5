// The HTML report: one self-contained file for people without Grafana (inline CSS, SVG and a few lines of script;
// no fonts, images, scripts or styles from anywhere else, and a Content-Security-Policy that forbids fetching any).
// Pure: a string from the summary, the per-group histograms, the findings with their drawn timelines and the
// episodes chosen for the table.
import { FindingKind, Severity, TriggerKind, type Episode, type Finding } from '../core/model.js';
import { evidenceObject } from '../trace/json.js';
import { CATEGORY_COLORS, CATEGORY_LABELS, SEVERITY_COLORS, escapeXml as esc, histogramSvg } from './svg.js';
import type { GroupHistograms, LatencyStats, Summary } from './summary.js';
import { formatNs } from './table.js';

export interface HtmlReportInput {
  title: string;
  /** The trace file, for the heading. */
  source: string;
  /** When the report was made (ISO 8601), given by the caller so the page is reproducible. */
  generatedAt: string;
  summary: Summary;
  histograms: GroupHistograms;
  /** Every finding, in the order shown. */
  findings: Finding[];
  /** Drawn timelines (SVG) by finding id. */
  timelines: Map<string, string>;
  /** Why some findings have no timeline, when they do not. */
  timelinesNote?: string;
  /** Episodes for the table, in the order shown, with the total and how they were chosen. */
  episodes: { rows: Episode[]; total: number; chosen: string };
  /** Rows per page of the episode table (the page shows every row without script). */
  pageSize?: number;
}

const enumName = (values: object, n: number | null | undefined): string =>
  (values as Record<number, string | undefined>)[n ?? 0] ?? String(n ?? 0);
const int = (n: number): string => n.toLocaleString('en-US');

const CSS = `
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;margin:0;color:#1d1d1d;background:#fafafa}
main{max-width:1000px;margin:0 auto;padding:16px 20px 40px}
h1{font-size:22px;margin:8px 0 2px}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #ddd;padding-bottom:4px}
h3{font-size:15px;margin:16px 0 6px}.muted{color:#666}
.cards{display:flex;flex-wrap:wrap;gap:10px;margin:12px 0}.card{background:#fff;border:1px solid #e2e2e2;border-radius:6px;padding:8px 12px;min-width:120px}
.card b{display:block;font-size:20px}
table{border-collapse:collapse;background:#fff;font-size:12.5px}th,td{padding:3px 8px;border-bottom:1px solid #eee;text-align:right;white-space:nowrap}
th{background:#f3f3f3}td.l,th.l{text-align:left}
.grid{display:flex;flex-wrap:wrap;gap:12px}.hist{background:#fff;border:1px solid #e2e2e2;border-radius:6px;padding:6px}
.hist h4{margin:0 0 2px;font-size:12px;font-weight:600}.hist p{margin:0;font-size:11px;color:#666}
.finding{background:#fff;border:1px solid #e2e2e2;border-left:5px solid #999;border-radius:6px;padding:8px 12px;margin:12px 0}
.finding h3{margin:2px 0 4px}.badge{display:inline-block;color:#fff;border-radius:3px;padding:0 6px;font-size:12px;margin-right:6px}
.evidence{font-size:12px}.evidence td{white-space:normal;text-align:left;vertical-align:top}.evidence td:first-child{color:#555;white-space:nowrap}
.legend span{display:inline-block;margin:0 12px 4px 0;font-size:12px}.legend i{display:inline-block;width:12px;height:10px;margin-right:4px;border-radius:2px}
.scroll{overflow-x:auto;max-width:100%}.pager{margin:8px 0}.pager button{margin-right:6px}svg{display:block;max-width:100%;height:auto}
`;

/** Pages the episode table (rows carry data-page); without script every row stays visible. */
const PAGER_JS = `(function(){var t=document.getElementById('episodes');if(!t)return;var size=+t.dataset.pageSize,rows=t.tBodies[0].rows,
pages=Math.max(1,Math.ceil(rows.length/size)),page=0,label=document.getElementById('page-label');
function show(){for(var i=0;i<rows.length;i++)rows[i].hidden=Math.floor(i/size)!==page;label.textContent=(page+1)+' / '+pages;}
document.getElementById('prev').onclick=function(){if(page>0){page--;show();}};
document.getElementById('next').onclick=function(){if(page<pages-1){page++;show();}};
document.getElementById('pager').hidden=false;show();})();`;

export function renderHtmlReport(r: HtmlReportInput): string {
  const s = r.summary;
  const out: string[] = [];
  out.push('<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">',
    // nothing may be fetched: styles and the script are inline, images are SVG in the page
    `<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:">`,
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>${esc(r.title)}</title><style>${CSS}</style></head><body><main>`);
  out.push(`<h1>${esc(r.title)}</h1><p class="muted">${esc(r.source)} · generated ${esc(r.generatedAt)} · revokescope report</p>`);
  const sev = s.findings.bySeverity;
  out.push('<div class="cards">',
    card('events', int(s.events)), card('episodes', int(s.episodes)), card('revoke episodes', int(s.revokeEpisodes)),
    card('incomplete episodes', int(s.incompleteEpisodes)),
    card('findings', `${int(s.findings.total)}`, `${int(sev.CRITICAL ?? 0)} critical, ${int(sev.WARNING ?? 0)} warning, ${int(sev.INFO ?? 0)} info`),
    card('inconclusive', int(s.findings.inconclusive)), card('lost events', int(s.input.lostEvents)), '</div>');

  // latency
  const lat = s.revokeLatency;
  out.push(`<h2 id="latency">Revoke latency</h2><p class="muted">Nearest-rank percentiles of revoke_ns over ${int(lat.all.count)} revoke ` +
    'episodes that revoked something (lock taken → last zap or DMABUF revoke done). Histograms: half-decade buckets, the same edges in every chart.</p>');
  if (lat.all.count === 0) {
    out.push('<p>No revoke episode revoked anything.</p>');
  } else {
    for (const [title, groups, hists] of [['by kernel', lat.byKernel, r.histograms.byKernel], ['by driver', lat.byDriver, r.histograms.byDriver]] as const) {
      out.push(`<h3>${title}</h3>`, latencyTable(title.slice(3), groups, title === 'by kernel' ? lat.all : undefined));
      out.push('<div class="grid">');
      for (const [name, buckets] of Object.entries(hists)) {
        const st = groups[name];
        out.push(`<div class="hist" data-group="${esc(title)}"><h4>${esc(name)}</h4><p>n=${int(st?.count ?? 0)}, p50 ${formatNs(st?.p50Ns ?? 0)}, ` +
          `p99 ${formatNs(st?.p99Ns ?? 0)}</p>${histogramSvg(buckets, name)}</div>`);
      }
      out.push('</div>');
    }
  }

  // findings
  out.push(`<h2 id="findings">Findings (${int(r.findings.length)})</h2>`);
  if (r.findings.length === 0) out.push('<p>No findings.</p>');
  else {
    out.push(`<p class="muted">Most severe first; certain before inconclusive. Each timeline shows the device's tracks around the episode ` +
      `(times relative to its lock acquire); the finding is the solid line, other findings of the device dashed. ${esc(r.timelinesNote ?? '')}</p>`);
    out.push('<div class="legend">', ...Object.entries(CATEGORY_LABELS).map(([cat, label]) =>
      `<span><i style="background:${CATEGORY_COLORS[cat]}"></i>${esc(label)}</span>`), '<span><i style="background:#cfcfcf"></i>lock wait</span></div>');
    for (const f of r.findings) out.push(findingSection(f, r.timelines.get(f.findingId)));
  }

  // open locks
  if (s.openLocks.length > 0) {
    out.push(`<h2 id="open-locks">Still holding memory_lock at the end (${int(s.openLocks.length)})</h2>`,
      '<table><thead><tr><th class="l">host</th><th class="l">device</th><th>held</th><th class="l">task</th><th class="l">trigger</th></tr></thead><tbody>',
      ...s.openLocks.map((o) => `<tr><td class="l">${esc(o.hostname)}</td><td class="l">${esc(o.device)}</td><td>${formatNs(o.heldNs)}</td>` +
        `<td class="l">${esc(o.comm || '?')} (${o.tid})</td><td class="l">${esc(o.trigger)}</td></tr>`), '</tbody></table>');
  }

  // episodes
  const size = r.pageSize ?? 50;
  out.push(`<h2 id="episodes-heading">Episodes</h2><p class="muted">${int(r.episodes.rows.length)} of ${int(r.episodes.total)} episodes: ` +
    `${esc(r.episodes.chosen)}; ${size} per page.</p>`);
  const kindsByEpisode = new Map<string, string[]>();
  for (const f of r.findings) {
    if (!f.episodeId) continue;
    const a = kindsByEpisode.get(f.episodeId) ?? [];
    a.push(enumName(FindingKind, f.kind));
    kindsByEpisode.set(f.episodeId, a);
  }
  out.push(`<div class="pager" id="pager" hidden><button id="prev" type="button">previous</button><button id="next" type="button">next</button>` +
    '<span id="page-label"></span></div>');
  out.push(`<div class="scroll"><table id="episodes" data-page-size="${size}"><thead><tr>${['episode', 'host', 'device', 'driver', 'kernel', 'trigger', 'task']
    .map((h) => `<th class="l">${h}</th>`).join('')}${['wait', 'hold', 'revoke', 'zaps', 'DMABUFs', 'importers'].map((h) => `<th>${h}</th>`).join('')}` +
    '<th class="l">complete</th><th class="l">findings</th></tr></thead><tbody>');
  for (const e of r.episodes.rows) {
    out.push(`<tr data-episode-id="${esc(e.episodeId)}"><td class="l">${esc(e.episodeId)}</td><td class="l">${esc(e.hostname)}</td>` +
      `<td class="l">${esc(e.device)}</td><td class="l">${esc(e.driver)}</td><td class="l">${esc(e.kernelRelease)}</td>` +
      `<td class="l">${esc(enumName(TriggerKind, e.trigger))}${e.revoke ? '' : ' (lock only)'}</td><td class="l">${esc(e.comm || '')}${e.pid ? ` (${e.pid})` : ''}</td>` +
      `<td>${formatNs(e.lockWaitNs)}</td><td>${formatNs(e.holdNs)}</td><td>${e.revokeNs ? formatNs(e.revokeNs) : '–'}</td><td>${e.zapCount}</td>` +
      `<td>${e.dmabufCount}</td><td>${e.importerCount}</td><td class="l">${e.complete ? 'yes' : 'no'}</td>` +
      `<td class="l">${esc((kindsByEpisode.get(e.episodeId) ?? []).join(', '))}</td></tr>`);
  }
  out.push('</tbody></table></div>');
  out.push('<p class="muted">This file is self-contained: it loads nothing from the network.</p>');
  out.push(`</main><script>${PAGER_JS}</script></body></html>\n`);
  return out.join('\n');
}

function card(label: string, value: string, note = ''): string {
  return `<div class="card"><span class="muted">${esc(label)}</span><b>${esc(value)}</b>${note ? `<span class="muted">${esc(note)}</span>` : ''}</div>`;
}

function latencyTable(dimension: string, groups: Record<string, LatencyStats>, all?: LatencyStats): string {
  const row = (name: string, st: LatencyStats) => `<tr><td class="l">${esc(name)}</td><td>${int(st.count)}</td><td>${formatNs(st.p50Ns)}</td>` +
    `<td>${formatNs(st.p90Ns)}</td><td>${formatNs(st.p99Ns)}</td><td>${formatNs(st.maxNs)}</td></tr>`;
  return `<table class="latency"><thead><tr><th class="l">${esc(dimension)}</th><th>count</th><th>p50</th><th>p90</th><th>p99</th><th>max</th></tr></thead><tbody>` +
    Object.entries(groups).map(([name, st]) => row(name, st)).join('') + (all ? row('all', all) : '') + '</tbody></table>';
}

function findingSection(f: Finding, svg: string | undefined): string {
  const kind = enumName(FindingKind, f.kind), severity = enumName(Severity, f.severity);
  const color = SEVERITY_COLORS[severity] ?? '#999';
  const ev = evidenceObject(f.evidence);
  const rows = Object.entries(ev).map(([k, v]) => `<tr><td>${esc(k)}</td><td>${esc(typeof v === 'string' ? v : JSON.stringify(v))}</td></tr>`).join('');
  return `<section class="finding" id="finding-${esc(f.findingId)}" data-finding-id="${esc(f.findingId)}" data-severity="${esc(severity)}" ` +
    `style="border-left-color:${color}"><h3><span class="badge" style="background:${color}">${esc(severity)}</span>${esc(kind)}` +
    `${f.inconclusive ? ' <span class="muted">(inconclusive)</span>' : ''}</h3>` +
    `<p class="muted">${esc(f.hostname)} · ${esc(f.device)}${f.driver ? ` · ${esc(f.driver)}` : ''} · ${esc(f.kernelRelease)} · ` +
    `ts ${esc(String(f.tsNs))} ns · episode ${esc(f.episodeId || '–')} · finding ${esc(f.findingId)}</p>` +
    `<table class="evidence"><tbody>${rows}</tbody></table>` +
    (svg ?? '<p class="muted">(timeline not drawn)</p>') + '</section>';
}
