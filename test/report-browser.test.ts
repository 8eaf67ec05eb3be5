// The HTML report rendered by headless Chromium (Debian's `chromium`, driven by playwright-core): it loads with no
// network request, no console error and no script error (markup in the trace's host and task names included), every
// finding's timeline is drawn with its finding mark, the episode pager pages, and the screenshot is not blank (it
// holds the colours of the zaps, the holds and the critical findings). Without chromium the test says why and skips;
// under CI=true that is a failure (test/support/prefetch-tools.sh installs it as root).
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run as analyzeRun } from '../services/cli/commands/analyze.js';
import { run } from '../services/cli/commands/report.js';
import { CATEGORY_COLORS, SEVERITY_COLORS } from '../services/report/svg.js';
import { countColor, decodePng } from './support/png.js';
import { writeReportTrace } from './support/report-fixture.js';
import { Capture } from './support/capture.js';

const CHROMIUM = process.env.REVOKESCOPE_CHROMIUM ?? '/usr/bin/chromium';
const haveChromium = existsSync(CHROMIUM);
if (!haveChromium) {
  const why = `${CHROMIUM} not found (apt-get install chromium, or set REVOKESCOPE_CHROMIUM)`;
  if (process.env.CI === 'true') throw new Error(`report-browser.test.ts needs headless Chromium under CI=true: ${why}`);
  console.warn(`report-browser.test.ts: skipped: ${why}`);
}

// where the screenshots stay for a person to look at (the test's temp dir is removed)
const SHOTS = resolve(process.env.REVOKESCOPE_SCREENSHOT_DIR ?? '.cache/report-screenshots');
const dir = mkdtempSync(join(tmpdir(), 'revokescope-browser-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));


describe.skipIf(!haveChromium)('report --html in headless Chromium', () => {
  let page: import('playwright-core').Page;
  let browser: import('playwright-core').Browser;
  let url: string;
  let findings: { findingId: string; severity: string }[];
  const requests: string[] = [];
  const consoleErrors: string[] = [];
  const pageErrors: string[] = [];

  beforeAll(async () => {
    const trace = await writeReportTrace(dir);
    const out = join(dir, 'report.html');
    const code = await run([trace, '--html', out], { stdout: new Capture(), stderr: new Capture() });
    expect(code).toBe(0);
    const json = new Capture();
    await analyzeRun([trace, '--format', 'json'], { stdout: json, stderr: new Capture() });
    findings = JSON.parse(json.text).findings;
    url = pathToFileURL(out).href;
    const { chromium } = await import('playwright-core');
    // the flags this machine needs (no sandbox as root; no background networking: the network is closed)
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
        '--disable-component-update', '--disable-sync'] });
    const context = await browser.newContext({ viewport: { width: 1100, height: 1400 } });
    page = await context.newPage();
    page.on('request', (r) => { if (r.url() !== url) requests.push(r.url()); });
    page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); });
    page.on('pageerror', (e) => pageErrors.push(String(e)));
    await page.goto(url, { waitUntil: 'load' });
  }, 120_000);

  afterAll(async () => { await browser?.close(); });

  it('loads with no network request, no console error and no script error', async () => {
    expect(requests).toEqual([]);
    expect(consoleErrors).toEqual([]);
    expect(pageErrors).toEqual([]);
    expect(await page.title()).toMatch(/^revokescope report: /); // the task name's markup did not retitle the page
  });

  it('draws every finding\'s timeline with its finding mark, and a histogram per kernel and driver', async () => {
    const sections = page.locator('section.finding');
    const drawn: { id: string | null; width: number; height: number; marks: number; spans: number }[] = [];
    for (let i = 0; i < await sections.count(); i++) {
      const s = sections.nth(i);
      const svg = s.locator('svg.timeline:not(.zoom)');
      const box = await svg.boundingBox();
      drawn.push({ id: await s.getAttribute('data-finding-id'), width: box?.width ?? 0, height: box?.height ?? 0,
        marks: await svg.locator('g.finding-mark').count(), spans: await svg.locator('rect.span').count() });
    }
    expect(drawn.length).toBe(findings.length);
    for (const d of drawn) {
      expect(d.marks, d.id!).toBe(1);
      expect(d.width).toBeGreaterThan(500);
      expect(d.height).toBeGreaterThan(40);
    }
    expect(drawn.filter((d) => d.spans > 0).length).toBeGreaterThan(findings.length / 2);
    const hist = page.locator('svg.histogram');
    expect(await hist.count()).toBeGreaterThan(2);
    for (let i = 0; i < await hist.count(); i++) expect((await hist.nth(i).boundingBox())?.width).toBeGreaterThan(100);
  });

  it('pages the episode table 50 rows at a time', async () => {
    const ids = (selector: string) => page.locator(selector).evaluateAll((rows) => rows.map((r) => r.getAttribute('data-episode-id')));
    const visible = () => ids('#episodes tbody tr:not([hidden])');
    const all = await ids('#episodes tbody tr');
    expect(await page.textContent('#page-label')).toBe(`1 / ${Math.ceil(all.length / 50)}`);
    expect(await visible()).toEqual(all.slice(0, 50));
    await page.click('#next');
    expect(await page.textContent('#page-label')).toBe(`2 / ${Math.ceil(all.length / 50)}`);
    expect(await visible()).toEqual(all.slice(50, 100));
    await page.click('#prev');
    expect(await visible()).toEqual(all.slice(0, 50));
  });

  it('the screenshot is not blank: it shows the zaps, the holds and the critical findings', async () => {
    mkdirSync(SHOTS, { recursive: true });
    const full = await page.screenshot({ fullPage: true });
    writeFileSync(join(SHOTS, 'report-full.png'), full);
    const first = page.locator('section.finding').first();
    writeFileSync(join(SHOTS, 'report-finding.png'), await first.screenshot());
    console.log(`report-browser.test.ts: screenshots in ${SHOTS}`);
    const img = decodePng(full);
    expect(img.width).toBe(1100);
    expect(img.height).toBeGreaterThan(3000);
    let ink = 0;
    for (let i = 0; i < img.rgba.length; i += 4) if (img.rgba[i]! < 200 || img.rgba[i + 1]! < 200 || img.rgba[i + 2]! < 200) ink++;
    expect(ink / (img.width * img.height)).toBeGreaterThan(0.02);
    expect(countColor(img, CATEGORY_COLORS.lock!)).toBeGreaterThan(500); // hold bars
    expect(countColor(img, CATEGORY_COLORS.zap!)).toBeGreaterThan(20);
    expect(countColor(img, SEVERITY_COLORS.CRITICAL!)).toBeGreaterThan(200); // badges, borders and finding lines
    expect(countColor(img, '#4f7fc0')).toBeGreaterThan(500); // histogram bars
    expect(readFileSync(join(SHOTS, 'report-finding.png')).length).toBeGreaterThan(5_000);
  });
});
