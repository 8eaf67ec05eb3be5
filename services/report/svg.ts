// SVG drawings for the HTML report, built as strings from data (pure): a finding's timeline (its device's tracks
// around the episode, from the same Timeline as the trace-event export) and latency histograms.
import type { HistogramBucket } from './summary.js';
import { formatNs } from './table.js';
import { assignLanes, compareSlices, type Timeline, type TimelineItem, type TimelineOwner } from './timeline.js';

export function escapeXml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** Fill colour per item category (the legend in the report lists them). */
export const CATEGORY_COLORS: Record<string, string> = {
  trigger: '#4a8f9c', lock: '#8fb3de', zap: '#e07b39', dmabuf: '#5c9e4a', move: '#9b6bc4', power: '#d9b534', reset: '#c4493a',
  mapping: '#7a7a7a', device: '#444444', loss: '#000000',
};
export const CATEGORY_LABELS: Record<string, string> = {
  trigger: 'trigger (ioctl / config write)', lock: 'memory_lock wait / hold', zap: 'zap (unmap_mapping_range)', dmabuf: 'DMABUF revoke',
  move: 'move_notify (importers)', power: 'power transition', reset: 'function reset', mapping: 'mmap / fault', device: 'DeviceInfo',
};
const WAIT_COLOR = '#cfcfcf';
export const SEVERITY_COLORS: Record<string, string> = { CRITICAL: '#c62828', WARNING: '#e08a00', INFO: '#1e6fc2' };

/** Items per owner, each owner's in start order: built once, read for every finding. */
export function indexByOwner(t: Timeline): Map<TimelineOwner, TimelineItem[]> {
  const m = new Map<TimelineOwner, TimelineItem[]>();
  for (const item of t.items) {
    const a = m.get(item.track.owner);
    if (a) a.push(item);
    else m.set(item.track.owner, [item]);
  }
  for (const a of m.values()) a.sort(compareSlices);
  return m;
}

export interface FindingView {
  findingId: string;
  /** The axis window (ns on the timeline's axis) and its zero (the episode's acquire, else the finding). */
  startNs: number;
  endNs: number;
  zeroNs: number;
  rows: { label: string; items: TimelineItem[] }[];
  mark: TimelineItem;
  /** Other findings of the device inside the window. */
  others: TimelineItem[];
  /** Items in the window left out (past maxItems). */
  omitted: number;
}

/** The window of a finding: its episode (lock wait, hold, and the trigger of the same task that led to it) and the
 * finding itself, padded; without an episode, the spans that were running at the finding's time. */
export function findingView(t: Timeline, byOwner: Map<TimelineOwner, TimelineItem[]>, findingId: string, episodeId: string,
  maxItems = 400, window?: { startNs: number; endNs: number }): FindingView | undefined {
  const mark = t.findings.get(findingId);
  if (!mark) return undefined;
  const owner = mark.track.owner;
  const items = byOwner.get(owner) ?? [];
  const hold = episodeId ? t.holds.get(episodeId) : undefined;
  let start = mark.startNs, end = mark.startNs;
  if (hold && hold.track.owner === owner) {
    start = Math.min(start, hold.startNs - Number(hold.args.waitNs ?? 0));
    end = Math.max(end, hold.startNs + (hold.durNs ?? 0));
    for (const it of items) {
      if (it.cat === 'trigger' && it.args.tid === hold.args.tid && it.startNs <= hold.startNs && it.startNs >= start - 1e9
        && it.startNs + (it.durNs ?? 0) >= start - 1e6) start = Math.min(start, it.startNs);
    }
  } else {
    for (const it of items) {
      const e = it.startNs + (it.durNs ?? 0);
      if (it.durNs !== undefined && it.startNs <= mark.startNs && e >= mark.startNs && it.track.name !== 'findings') {
        start = Math.min(start, it.startNs);
        end = Math.max(end, e);
      }
    }
  }
  const pad = Math.max(end - start, 10_000) * 0.08;
  start -= pad;
  end += pad;
  if (window) ({ startNs: start, endNs: end } = window);
  const inside = items.filter((it) => it.startNs <= end && it.startNs + (it.durNs ?? 0) >= start);
  const others = inside.filter((it) => it.cat === 'finding' && it !== mark);
  let drawn = inside.filter((it) => it.cat !== 'finding');
  const omitted = Math.max(0, drawn.length - maxItems);
  if (omitted) drawn = drawn.slice(0, maxItems);
  const byTrack = new Map<string, TimelineItem[]>();
  for (const it of drawn) {
    const a = byTrack.get(it.track.key);
    if (a) a.push(it);
    else byTrack.set(it.track.key, [it]);
  }
  const tracks = [...byTrack.values()].map((a) => a[0]!.track)
    .sort((a, b) => a.order - b.order || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const rows: FindingView['rows'] = [];
  for (const tr of tracks) {
    const list = byTrack.get(tr.key)!;
    const lanes = assignLanes(list);
    const n = Math.max(...lanes) + 1;
    for (let lane = 0; lane < n; lane++) {
      rows.push({ label: lane === 0 ? tr.name : `${tr.name} #${lane + 1}`, items: list.filter((_, i) => lanes[i] === lane) });
    }
  }
  return { findingId, startNs: start, endNs: end, zeroNs: hold && hold.track.owner === owner ? hold.startNs : mark.startNs, rows, mark, others, omitted };
}

/** When the revoke (zaps, DMABUF revoke with revoked=true, and the move_notify calls inside it) takes up less than a
 * quarter of a view's window (a long hold after a fast revoke), the window that shows it: from the acquire (or the
 * first step) to the end of the last revoking step, padded. */
export function revokeZoom(v: FindingView): { startNs: number; endNs: number } | undefined {
  const items = v.rows.flatMap((r) => r.items);
  let lo = Infinity, hi = -Infinity;
  for (const it of items) {
    if (it.durNs === undefined || !(it.cat === 'zap' || (it.cat === 'dmabuf' && it.args.revoked === true))) continue;
    lo = Math.min(lo, it.startNs);
    hi = Math.max(hi, it.startNs + it.durNs);
  }
  if (!Number.isFinite(lo)) return undefined;
  for (const it of items) if (it.cat === 'move' && it.startNs >= lo && it.startNs <= hi) hi = Math.max(hi, it.startNs + (it.durNs ?? 0));
  lo = Math.min(lo, v.zeroNs);
  if (hi - lo >= 0.25 * (v.endNs - v.startNs)) return undefined;
  const pad = Math.max(hi - lo, 2_000) * 0.1;
  return { startNs: lo - pad, endNs: hi + pad };
}

/** A step of 1, 2 or 5 × 10^k giving about `target` ticks over `span`. */
function niceStep(span: number, target = 7): number {
  const raw = span / target;
  const p = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 5, 10]) if (m * p >= raw) return m * p;
  return 10 * p;
}

function signedNs(ns: number): string {
  if (ns === 0) return '0';
  return `${ns > 0 ? '+' : '−'}${formatNs(Math.abs(ns))}`;
}

/** One finding's timeline: a row per device track (lanes where spans overlap), spans as bars, marks as ticks, the
 * finding as a line across (class "finding-mark"), other findings in the window dashed (class "other-finding"). */
export function timelineSvg(v: FindingView, severity: string, width = 960, zoom = false): string {
  const labelW = 170, rowH = 20, top = 26, right = 12;
  const plotW = width - labelW - right;
  const height = top + v.rows.length * rowH + 8;
  const span = Math.max(1, v.endNs - v.startNs);
  const x = (ns: number): number => labelW + ((ns - v.startNs) / span) * plotW;
  const out: string[] = [];
  out.push(`<svg class="${zoom ? 'timeline zoom' : 'timeline'}" data-finding-id="${escapeXml(v.findingId)}" xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" ` +
    `viewBox="0 0 ${width} ${height}" role="img" aria-label="timeline of finding ${escapeXml(v.findingId)}">`);
  // axis: ticks relative to the episode's acquire (or the finding)
  const step = niceStep(span);
  const first = Math.ceil((v.startNs - v.zeroNs) / step) * step;
  for (let rel = first; v.zeroNs + rel <= v.endNs; rel += step) {
    const px = x(v.zeroNs + rel).toFixed(1);
    out.push(`<line class="tick" x1="${px}" x2="${px}" y1="${top - 6}" y2="${height - 4}" stroke="#e4e4e4"/>`);
    out.push(`<text x="${px}" y="${top - 10}" font-size="10" text-anchor="middle" fill="#555">${escapeXml(signedNs(rel))}</text>`);
  }
  v.rows.forEach((row, r) => {
    const y = top + r * rowH;
    out.push(`<text class="row-label" x="${labelW - 6}" y="${y + 14}" font-size="11" text-anchor="end" fill="#333">${escapeXml(row.label)}</text>`);
    out.push(`<line x1="${labelW}" x2="${width - right}" y1="${y + rowH - 1}" y2="${y + rowH - 1}" stroke="#f0f0f0"/>`);
    for (const it of row.items) {
      const tip = escapeXml(tooltip(it, v.zeroNs));
      if (it.durNs === undefined) {
        const px = x(it.startNs);
        out.push(`<path class="mark" d="M${(px - 4).toFixed(1)} ${y + 3} L${(px + 4).toFixed(1)} ${y + 3} L${px.toFixed(1)} ${y + 13} Z" ` +
          `fill="${CATEGORY_COLORS[it.cat] ?? '#666'}"><title>${tip}</title></path>`);
        continue;
      }
      const x0 = Math.max(labelW, x(it.startNs));
      const x1 = Math.min(width - right, x(it.startNs + it.durNs));
      const w = Math.max(1.5, x1 - x0);
      const fill = it.name === 'lock wait' ? WAIT_COLOR : CATEGORY_COLORS[it.cat] ?? '#888';
      out.push(`<rect class="span" data-cat="${escapeXml(it.cat)}" x="${x0.toFixed(1)}" y="${y + 3}" width="${w.toFixed(1)}" height="14" rx="2" ` +
        `fill="${fill}"><title>${tip}</title></rect>`);
      const chars = Math.floor((w - 6) / 6.2);
      if (chars >= 4) {
        const label = it.name.length > chars ? `${it.name.slice(0, chars - 1)}…` : it.name;
        out.push(`<text x="${(x0 + 3).toFixed(1)}" y="${y + 14}" font-size="10" fill="#111" pointer-events="none">${escapeXml(label)}</text>`);
      }
    }
  });
  for (const o of v.others) {
    if (o.startNs < v.startNs || o.startNs > v.endNs) continue;
    const px = x(o.startNs).toFixed(1);
    const f = o.args.finding as { severity?: string } | undefined;
    out.push(`<line class="other-finding" x1="${px}" x2="${px}" y1="${top - 4}" y2="${height - 4}" stroke="${SEVERITY_COLORS[f?.severity ?? ''] ?? '#999'}" ` +
      `stroke-width="1.5" stroke-dasharray="4 3"><title>${escapeXml(tooltip(o, v.zeroNs))}</title></line>`);
  }
  if (v.mark.startNs < v.startNs || v.mark.startNs > v.endNs) {
    out.push('</svg>');
    return out.join('');
  }
  const px = x(v.mark.startNs);
  const color = SEVERITY_COLORS[severity] ?? '#c62828';
  out.push(`<g class="finding-mark" data-finding-id="${escapeXml(v.findingId)}"><title>${escapeXml(tooltip(v.mark, v.zeroNs))}</title>` +
    `<line x1="${px.toFixed(1)}" x2="${px.toFixed(1)}" y1="${top - 4}" y2="${height - 4}" stroke="${color}" stroke-width="2"/>` +
    `<path d="M${px.toFixed(1)} ${top - 8} l5 5 l-5 5 l-5 -5 Z" fill="${color}"/></g>`);
  out.push('</svg>');
  return out.join('');
}

function tooltip(it: TimelineItem, zeroNs: number): string {
  const at = signedNs(it.startNs - zeroNs);
  const dur = it.durNs === undefined ? '' : `, ${formatNs(it.durNs)}`;
  const a = it.args;
  const who = a.comm || a.tid ? ` — ${String(a.comm || '?')} tid ${String(a.tid ?? '?')}` : '';
  return `${it.name} at ${at}${dur}${who}`;
}

/** A histogram of half-decade buckets: bars, with the buckets' edges under them. */
export function histogramSvg(buckets: HistogramBucket[], label: string, width = 300, height = 120): string {
  const left = 6, right = 6, top = 8, bottom = 30;
  const plotW = width - left - right, plotH = height - top - bottom;
  const max = Math.max(1, ...buckets.map((b) => b.count));
  const bw = buckets.length ? plotW / buckets.length : plotW;
  const out: string[] = [`<svg class="histogram" xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" ` +
    `role="img" aria-label="revoke latency histogram of ${escapeXml(label)}">`];
  out.push(`<line x1="${left}" x2="${width - right}" y1="${top + plotH}" y2="${top + plotH}" stroke="#999"/>`);
  buckets.forEach((b, i) => {
    const h = b.count ? Math.max(1.5, (b.count / max) * plotH) : 0;
    const x0 = left + i * bw;
    if (h > 0) {
      out.push(`<rect class="bar" x="${(x0 + 1).toFixed(1)}" y="${(top + plotH - h).toFixed(1)}" width="${Math.max(1, bw - 2).toFixed(1)}" ` +
        `height="${h.toFixed(1)}" fill="#4f7fc0"><title>${escapeXml(`${formatNs(b.loNs)} – ${formatNs(b.hiNs)}: ${b.count}`)}</title></rect>`);
    }
  });
  // edge labels: about 6, always the first and the last edge
  const every = Math.max(1, Math.ceil((buckets.length + 1) / 6));
  const at: number[] = [];
  for (let i = 0; i <= buckets.length; i += every) at.push(i);
  if (at[at.length - 1] !== buckets.length) {
    if (at.length > 1 && buckets.length - at[at.length - 1]! < every) at.pop();
    at.push(buckets.length);
  }
  for (const i of at) {
    const ns = i < buckets.length ? buckets[i]!.loNs : buckets[buckets.length - 1]?.hiNs ?? 0;
    const px = left + i * bw;
    out.push(`<text x="${px.toFixed(1)}" y="${height - 14}" font-size="9" text-anchor="${i === 0 ? 'start' : i === buckets.length ? 'end' : 'middle'}" ` +
      `fill="#555">${escapeXml(formatNs(ns))}</text>`);
  }
  out.push('</svg>');
  return out.join('');
}
