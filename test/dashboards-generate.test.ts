// The committed dashboard JSON is exactly what dashboards/generate.ts produces, and the dashboards hang
// together: panel layout, data source references, variables used in SQL, links between dashboards, and
// the provisioning files that load them.
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { DATASOURCE_TYPE, DATASOURCE_UID, SCHEMA_VERSION } from '../dashboards/builder.js';
import { generated, JSON_DIR } from '../dashboards/generate.js';
import { DASHBOARDS } from '../dashboards/index.js';
import { UID } from '../dashboards/uids.js';

interface Panel {
  id: number; type: string; title: string; gridPos: { x: number; y: number; w: number; h: number };
  datasource?: { type: string; uid: string };
  targets?: { rawSql: string; datasource: { uid: string } }[];
  fieldConfig?: { defaults: { links?: { url: string }[] } };
}
interface Dashboard {
  uid: string; schemaVersion: number; panels: Panel[];
  templating: { list: { name: string; type: string; query: string; datasource?: { uid: string } }[] };
  links: { type: string; url?: string }[];
}

const committed = (file: string): string => readFileSync(join(JSON_DIR, file), 'utf8');
const dashboards = DASHBOARDS.map(({ file }) => ({ file, json: JSON.parse(committed(file)) as Dashboard }));

describe('dashboards as code', () => {
  it('regenerating gives the committed JSON byte for byte', () => {
    const files = readdirSync(JSON_DIR).filter((f) => f.endsWith('.json')).sort();
    expect(files).toEqual(DASHBOARDS.map((d) => d.file).sort());
    for (const { file, text } of generated()) expect(committed(file), `${file} is stale: npx tsx dashboards/generate.ts`).toBe(text);
  });

  it('generate.ts --check agrees', () => {
    // exits non-zero when a committed file differs
    execFileSync(process.execPath, ['--import', 'tsx', 'dashboards/generate.ts', '--check'], { stdio: 'pipe' });
  });

  it('has the four dashboards with the current schema version and unique uids', () => {
    expect(dashboards.map((d) => d.json.uid).sort()).toEqual(Object.values(UID).sort());
    for (const { json } of dashboards) expect(json.schemaVersion).toBe(SCHEMA_VERSION);
  });

  for (const { file, json } of dashboards) {
    it(`${file}: panels tile the grid without overlap, ids are unique`, () => {
      const ids = json.panels.map((p) => p.id);
      expect(new Set(ids).size).toBe(ids.length);
      const cells = new Set<string>();
      for (const p of json.panels) {
        expect(p.gridPos.x + p.gridPos.w, p.title).toBeLessThanOrEqual(24);
        for (let x = p.gridPos.x; x < p.gridPos.x + p.gridPos.w; x++) {
          for (let y = p.gridPos.y; y < p.gridPos.y + p.gridPos.h; y++) {
            const k = `${x},${y}`;
            expect(cells.has(k), `${p.title} overlaps at ${k}`).toBe(false);
            cells.add(k);
          }
        }
      }
    });

    it(`${file}: queries go to the ClickHouse data source variable and use only defined variables`, () => {
      const names = new Set(json.templating.list.map((v) => v.name));
      expect(json.templating.list.find((v) => v.type === 'datasource')?.query).toBe(DATASOURCE_TYPE);
      const sqls = [
        ...json.panels.flatMap((p) => (p.targets ?? []).map((t) => { expect(t.datasource.uid).toBe('${datasource}'); return t.rawSql; })),
        ...json.templating.list.filter((v) => v.type === 'query').map((v) => { expect(v.datasource?.uid).toBe('${datasource}'); return v.query; }),
      ];
      expect(sqls.length).toBeGreaterThan(0);
      for (const sql of sqls) {
        for (const m of sql.matchAll(/\$\{(\w+)(?::\w+)?\}|\$(?!__)(\w+)/g)) expect(names, `variable ${m[1] ?? m[2]} in ${sql}`).toContain(m[1] ?? m[2]);
        expect(sql).not.toMatch(/;\s*$/); // the plugin sends one statement
      }
    });

    it(`${file}: links point at revokescope dashboards and their variables`, () => {
      const byUid = new Map(dashboards.map((d) => [d.json.uid, d.json]));
      const urls = [
        ...json.links.filter((l) => l.type === 'link').map((l) => l.url!),
        ...json.panels.flatMap((p) => (p.fieldConfig?.defaults.links ?? []).map((l) => l.url)),
      ];
      for (const url of urls.filter((u) => !u.startsWith('${api}/'))) {
        const m = /^\/d\/([\w-]+)(?:\?(.*))?$/.exec(url);
        expect(m, url).not.toBeNull();
        const target = byUid.get(m![1]!);
        expect(target, url).toBeDefined();
        const targetVars = new Set(target!.templating.list.map((v) => v.name));
        for (const part of (m![2] ?? '').split('&').filter((s) => s.startsWith('var-'))) {
          expect(targetVars, url).toContain(part.slice(4).split('=')[0]);
        }
      }
      // every dashboard reaches every other one (tag link) and, except itself, at least one by explicit link
      expect(json.links.some((l) => l.type === 'dashboards')).toBe(true);
    });
  }

  it('finding tables link each finding to its explanation on the API (GET /api/v1/findings/{id}/explain)', () => {
    const explain = '${api}/api/v1/findings/${__data.fields.finding_id}/explain';
    for (const uid of [UID.fleet, UID.device]) {
      const d = dashboards.find((x) => x.json.uid === uid)!.json;
      const api = d.templating.list.find((v) => v.name === 'api');
      expect(api, uid).toMatchObject({ type: 'textbox', query: 'http://127.0.0.1:8080' });
      const linked = d.panels.filter((p) => (p.fieldConfig?.defaults.links ?? []).some((l) => l.url === explain));
      expect(linked.length, uid).toBeGreaterThan(0);
      // the link's column is in the panel's query
      for (const p of linked) for (const t of p.targets ?? []) expect(t.rawSql).toMatch(/\bfinding_id\b/);
    }
    // any other link to the API is this one
    for (const { json } of dashboards) {
      for (const p of json.panels) for (const l of p.fieldConfig?.defaults.links ?? []) if (l.url.startsWith('${api}')) expect(l.url).toBe(explain);
    }
  });

  it('the device drill-down is linked from the fleet overview with host and device', () => {
    const fleet = dashboards.find((d) => d.json.uid === UID.fleet)!.json;
    const links = fleet.panels.flatMap((p) => p.fieldConfig?.defaults.links ?? []).map((l) => l.url);
    expect(links).toContain(`/d/${UID.device}?\${__url_time_range}&var-host=\${__data.fields.hostname}&var-device=\${__data.fields.device}`);
  });

  it('provisioning loads the data source the dashboards expect and the generated files', () => {
    const ds = parse(readFileSync('dashboards/provisioning/datasources/revokescope.yaml', 'utf8')) as
      { apiVersion: number; datasources: { uid: string; type: string; jsonData: Record<string, unknown> }[] };
    expect(ds.apiVersion).toBe(1);
    expect(ds.datasources).toHaveLength(1);
    expect(ds.datasources[0]).toMatchObject({ uid: DATASOURCE_UID, type: DATASOURCE_TYPE });
    expect(ds.datasources[0]!.jsonData).toMatchObject({ protocol: 'native', port: 9000, defaultDatabase: 'revokescope' });
    const dash = parse(readFileSync('dashboards/provisioning/dashboards/revokescope.yaml', 'utf8')) as
      { providers: { type: string; options: { path: string } }[] };
    expect(dash.providers[0]!.type).toBe('file');
    // compose mounts dashboards/json where the provider looks
    const compose = readFileSync('deploy/docker-compose.yml', 'utf8');
    expect(compose).toContain(`../dashboards/json:${dash.providers[0]!.options.path}:ro`);
    // the datasource variable's default is the provisioned uid
    for (const { json } of dashboards) {
      const v = json.templating.list.find((x) => x.type === 'datasource') as unknown as { current: { value: string } };
      expect(v.current.value).toBe(DATASOURCE_UID);
    }
  });
});
