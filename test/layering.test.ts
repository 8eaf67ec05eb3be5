// Imports point inward (docs/ARCHITECTURE.md): the domain core imports nothing outside itself and no I/O; the
// collector backends and probe data never import the agent that drives them; nothing below services/cli/ imports
// the commands; nothing under services/ or collectors/ imports tests or benchmarks; the core reads no environment.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(dirname(new URL(import.meta.url).pathname), '..');

function files(dir: string): string[] {
  return readdirSync(join(ROOT, dir)).flatMap((n) => {
    const p = join(dir, n);
    return statSync(join(ROOT, p)).isDirectory() ? files(p) : p.endsWith('.ts') ? [p] : [];
  });
}

/** Every import of a file: relative ones resolved to repository paths, others as written. */
function importsOf(file: string): string[] {
  const text = readFileSync(join(ROOT, file), 'utf8');
  return [...text.matchAll(/^(?:import|export)\b[^'"]*?from\s+'([^']+)'|^import\s+'([^']+)'|import\('([^']+)'\)/gm)]
    .map((m) => m[1] ?? m[2] ?? m[3]!)
    .map((s) => (s.startsWith('.') ? relative(ROOT, resolve(ROOT, dirname(file), s)) : s));
}

function violations(dirs: string[], bad: (imp: string, file: string) => boolean): string[] {
  return dirs.flatMap(files).flatMap((f) => importsOf(f).filter((i) => bad(i, f)).map((i) => `${f} → ${i}`));
}

describe('imports point inward', () => {
  it('reads the imports (the checks below see real edges)', () => {
    expect(importsOf('collectors/agent/agent.ts')).toContain('collectors/probes/plan.js');
    expect(importsOf('services/core/correlator/index.ts').length).toBeGreaterThan(1);
  });

  it('services/core imports only itself and the generated protobuf code, and no I/O module', () => {
    expect(violations(['services/core'], (i) => !(i.startsWith('services/core/') || i.startsWith('gen/') || i === 'protobufjs/minimal.js'
      || i === 'node:crypto'))).toEqual([]);
  });

  it('the collector backends and the probe data never import the agent', () => {
    expect(violations(['collectors/ftrace', 'collectors/bpftrace', 'collectors/probes'], (i) => i.startsWith('collectors/agent/'))).toEqual([]);
  });

  it('nothing below services/cli/ imports a command or the options table', () => {
    const below = readdirSync(join(ROOT, 'services')).filter((d) => d !== 'cli' && statSync(join(ROOT, 'services', d)).isDirectory()).map((d) => `services/${d}`);
    expect(violations([...below, 'collectors'], (i) => i.startsWith('services/cli/'))).toEqual([]);
  });

  it('no product code imports tests or benchmarks', () => {
    expect(violations(['services', 'collectors'], (i) => i.startsWith('test/') || i.startsWith('bench/'))).toEqual([]);
  });

  it('the domain core reads no environment', () => {
    expect(files('services/core').filter((f) => readFileSync(join(ROOT, f), 'utf8').includes('process.env'))).toEqual([]);
  });
});
