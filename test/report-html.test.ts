// `revokescope report --html`: the page's structure without a browser (report-browser.test.ts renders it in
// Chromium): self-contained (no reference to anything outside the file), one section and one drawn timeline with
// one finding mark per finding, a histogram per kernel and per driver, the episode table capped as documented,
// markup from the trace shown as text, the limits.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run as analyzeRun } from '../services/cli/commands/analyze.js';
import { run } from '../services/cli/commands/report.js';
import { EVIL_COMM, EVIL_HOST, writeReportTrace } from './support/report-fixture.js';
import { Capture } from './support/capture.js';

const dir = mkdtempSync(join(tmpdir(), 'revokescope-report-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));


async function report(...argv: string[]) {
  const stdout = new Capture();
  const stderr = new Capture();
  const code = await run(argv, { stdout, stderr, now: () => new Date('2026-03-01T12:00:00Z') });
  return { code, stdout: stdout.text, stderr: stderr.text };
}

let trace: string;
let html: string;
let analysis: { episodes: { episodeId: string; revokeNs: string }[]; findings: { findingId: string; episodeId: string; kind: string; severity: string; inconclusive: boolean }[];
  summary: { revokeLatency: { byKernel: Record<string, unknown>; byDriver: Record<string, unknown> } } };

const count = (s: string, re: RegExp): number => (s.match(re) ?? []).length;

beforeAll(async () => {
  trace = await writeReportTrace(dir);
  const out = new Capture();
  expect(await analyzeRun([trace, '--format', 'json'], { stdout: out, stderr: new Capture() })).toBe(0);
  analysis = JSON.parse(out.text);
  const r = await report(trace, '--html', join(dir, 'report.html'));
  expect(r.code, r.stderr).toBe(0);
  expect(r.stdout).toMatch(/wrote .*report\.html \(\d+ bytes\): \d{3,} episodes, (\d+) findings, \1 timelines, 500 table rows/);
  html = readFileSync(join(dir, 'report.html'), 'utf8');
});

describe('report --html', () => {
  it('is self-contained: no URL, stylesheet, script or image from elsewhere, and a policy that forbids fetching', () => {
    expect(html).toMatch(/<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:">/);
    expect(html).not.toMatch(/<(link|img|iframe|object|embed)\b/i);
    expect(html).not.toMatch(/<script[^>]*\bsrc=/i);
    expect(html).not.toMatch(/\burl\(|@import/i);
    // the only URL-like text is the escaped one inside the hostname of the fixture
    expect(html.replace(/http:\/\/www\.w3\.org\/2000\/svg/g, '')).not.toMatch(/https?:\/\/(?!127\.0\.0\.1:9\/)/);
  });

  it('markup in hostnames and task names is text, never markup', () => {
    expect(html).not.toContain(EVIL_HOST);
    expect(html).not.toContain(EVIL_COMM);
    expect(html).toContain('evil&lt;img src=x onerror=&quot;fetch(&#39;http://127.0.0.1:9/&#39;)&quot;&gt;');
    expect(html).toContain('qemu&lt;/script&gt;&lt;script&gt;document.title=&quot;pwned&quot;&lt;/script&gt;');
    expect(count(html, /<script>/g)).toBe(1); // the pager's
  });

  it('every finding: a section in severity order, its evidence, one timeline with one finding mark', () => {
    const ids = [...html.matchAll(/<section class="finding" id="finding-([0-9a-f]+)"/g)].map((m) => m[1]);
    expect(ids.length).toBe(analysis.findings.length);
    expect([...ids].sort()).toEqual(analysis.findings.map((f) => f.findingId).sort());
    const rank = (id: string) => {
      const f = analysis.findings.find((x) => x.findingId === id)!;
      return (f.inconclusive ? 0 : 10) + ['INFO', 'WARNING', 'CRITICAL'].indexOf(f.severity);
    };
    const ranks = ids.map((id) => rank(id!));
    expect(ranks).toEqual([...ranks].sort((a, b) => b - a));
    expect(count(html, /<svg class="timeline" /g)).toBe(analysis.findings.length);
    expect(count(html, /<g class="finding-mark" /g)).toBeGreaterThanOrEqual(analysis.findings.length);
    for (const section of html.split('<section class="finding" ').slice(1)) {
      const body = section.slice(0, section.indexOf('</section>'));
      const main = body.slice(body.indexOf('<svg class="timeline" '), body.indexOf('</svg>'));
      expect(count(main, /<g class="finding-mark" /g)).toBe(1);
      expect(body).toMatch(/<td>rule<\/td><td>[a-z_]+(\.[a-z0-9_]+)?<\/td>/);
      expect(count(main, /<rect class="span"/g) + count(main, /<path class="mark"/g)).toBeGreaterThan(0);
    }
    // a long hold after a fast revoke gets a zoomed view of the revoke steps
    expect(count(html, /<svg class="timeline zoom" /g)).toBeGreaterThan(0);
  });

  it('a revoke latency histogram per kernel and per driver', () => {
    const kernels = Object.keys(analysis.summary.revokeLatency.byKernel).length;
    const drivers = Object.keys(analysis.summary.revokeLatency.byDriver).length;
    expect(count(html, /<div class="hist" data-group="by kernel">/g)).toBe(kernels);
    expect(count(html, /<div class="hist" data-group="by driver">/g)).toBe(drivers);
    expect(count(html, /<svg class="histogram" /g)).toBe(kernels + drivers);
    expect(count(html, /<rect class="bar" /g)).toBeGreaterThan(kernels + drivers);
  });

  it('the episode table: capped at 500, every episode with a finding first, then the slowest', () => {
    const rows = [...html.matchAll(/<tr data-episode-id="([0-9a-f]+)">/g)].map((m) => m[1]!);
    expect(rows.length).toBe(500);
    expect(html).toMatch(/500 of [\d,]{3,} episodes: every episode with a finding \(\d+\), then the slowest revoke episodes by revoke latency; 50 per page/);
    const withFinding = new Set(analysis.findings.map((f) => f.episodeId).filter((id) => id));
    const known = new Set(analysis.episodes.map((e) => e.episodeId));
    const listed = [...withFinding].filter((id) => known.has(id));
    expect(rows.slice(0, listed.length).sort()).toEqual(listed.sort());
    const slow = rows.slice(listed.length).map((id) => Number(analysis.episodes.find((e) => e.episodeId === id)!.revokeNs));
    expect(slow).toEqual([...slow].sort((a, b) => b - a));
  });

  it('the limits: fewer timelines, no timelines past --max-events, the same findings either way', async () => {
    const two = await report(trace, '--html', join(dir, 'two.html'), '--max-timelines', '2', '--max-episodes', '20');
    expect(two.code).toBe(0);
    const t = readFileSync(join(dir, 'two.html'), 'utf8');
    expect(count(t, /<svg class="timeline" /g)).toBe(2);
    expect(count(t, /<section class="finding" /g)).toBe(analysis.findings.length);
    expect(count(t, /<tr data-episode-id=/g)).toBe(20);
    expect(t).toContain(`Timelines are drawn for the first 2 of ${analysis.findings.length} findings (--max-timelines).`);
    const none = await report(trace, '--html', join(dir, 'none.html'), '--max-events', '50');
    expect(none.code).toBe(0);
    const n = readFileSync(join(dir, 'none.html'), 'utf8');
    expect(count(n, /<svg class="timeline" /g)).toBe(0);
    expect(count(n, /\(timeline not drawn\)/g)).toBe(analysis.findings.length);
    expect(n).toContain('No timeline is drawn: the timeline has more than 50 events (--max-events 50)');
  });

  it('usage errors', async () => {
    expect((await report('-', '--html', join(dir, 'x.html'))).stderr).toMatch(/reads the trace twice: give a file, not -/);
    expect((await report(trace)).stderr).toMatch(/--html FILE is required/);
    expect((await report(trace, '--html', join(dir, 'x.html'), '--max-episodes', '0')).code).toBe(2);
    const missing = await report(join(dir, 'missing.pb'), '--html', join(dir, 'x.html'));
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/missing\.pb/);
  });
});
