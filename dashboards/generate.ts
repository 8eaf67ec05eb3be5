// Writes the dashboards as JSON under dashboards/json/ (what Grafana provisioning loads).
//   npx tsx dashboards/generate.ts           write the files
//   npx tsx dashboards/generate.ts --check   exit 1 if a committed file differs from what the code generates
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { render } from './builder.js';
import { buildAll } from './index.js';

export const JSON_DIR = resolve(dirname(fileURLToPath(import.meta.url)), 'json');

export function generated(): { file: string; text: string }[] {
  return buildAll().map(({ file, json }) => ({ file, text: render(json) }));
}

function main(argv: string[]): number {
  const check = argv.includes('--check');
  const stale: string[] = [];
  mkdirSync(JSON_DIR, { recursive: true });
  for (const { file, text } of generated()) {
    const path = join(JSON_DIR, file);
    let current: string | undefined;
    try { current = readFileSync(path, 'utf8'); } catch { current = undefined; }
    if (current === text) continue;
    if (check) stale.push(file);
    else { writeFileSync(path, text); console.log(`wrote ${path}`); }
  }
  if (stale.length > 0) {
    console.error(`dashboards out of date (run npx tsx dashboards/generate.ts): ${stale.join(', ')}`);
    return 1;
  }
  return 0;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) process.exitCode = main(process.argv.slice(2));
