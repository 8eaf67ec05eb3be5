// deploy/ cannot run here (no Docker engine, no cluster). What can be checked is checked: every YAML file
// parses; every `revokescope` invocation in compose, Kubernetes, systemd and the Dockerfile is accepted by
// the built CLI (its flags parsed by the real command, then --help), every REVOKESCOPE_* variable they set
// is one the code reads, and the manifests have what a kernel tracer and a partitioned consumer need.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';

const ROOT = resolve(import.meta.dirname, '..');
const CLI = join(ROOT, 'dist/services/cli/main.js');

function walk(dir: string, keep: (f: string) => boolean): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? walk(p, keep) : keep(p) ? [p] : [];
  });
}

const yamlFiles = [...walk(join(ROOT, 'deploy'), (f) => /\.ya?ml$/.test(f)), ...walk(join(ROOT, 'dashboards/provisioning'), (f) => /\.ya?ml$/.test(f))];
const docs = (file: string): Record<string, any>[] => parseAllDocuments(readFileSync(file, 'utf8')).map((d) => d.toJS() as Record<string, any>).filter(Boolean);
const k8s = walk(join(ROOT, 'deploy/k8s'), (f) => f.endsWith('.yaml')).flatMap((f) => docs(f).map((d) => ({ file: relative(ROOT, f), doc: d })));
// compose uses YAML merge keys (<<: *anchor) for the shared service settings
const compose = parse(readFileSync(join(ROOT, 'deploy/docker-compose.yml'), 'utf8'), { merge: true }) as { services: Record<string, any> };

// ---------------------------------------------------------------- revokescope invocations

interface Invocation { where: string; argv: string[] }

const ourImage = (image: unknown): boolean => typeof image === 'string' && /^revokescope(-collector)?:/.test(image);

function composeInvocations(): Invocation[] {
  return Object.entries(compose.services).filter(([, s]) => ourImage(s.image) && s.command)
    .map(([name, s]) => ({ where: `compose service ${name}`, argv: s.command as string[] }));
}

function podSpecs(): { where: string; spec: any }[] {
  return k8s.flatMap(({ file, doc }) => {
    const spec = doc.kind === 'Job' || ['Deployment', 'DaemonSet', 'StatefulSet'].includes(doc.kind) ? doc.spec?.template?.spec : undefined;
    return spec ? [{ where: `${file} ${doc.kind}/${doc.metadata.name}`, spec }] : [];
  });
}

function k8sInvocations(): Invocation[] {
  return podSpecs().flatMap(({ where, spec }) => [...(spec.initContainers ?? []), ...spec.containers]
    .filter((c: any) => ourImage(c.image))
    .map((c: any) => {
      // either the image's ENTRYPOINT (revokescope) or a shell that passes the args on to it
      if (c.command) expect(c.command.join(' '), `${where}/${c.name}`).toMatch(/revokescope "\$@"/);
      return { where: `${where}/${c.name}`, argv: c.args as string[] };
    }));
}

function systemdInvocations(): Invocation[] {
  return walk(join(ROOT, 'deploy/systemd'), (f) => f.endsWith('.service')).flatMap((f) =>
    readFileSync(f, 'utf8').split('\n').filter((l) => l.startsWith('ExecStart=')).map((l) => {
      const [bin, ...argv] = l.slice('ExecStart='.length).trim().split(/\s+/);
      expect(bin).toBe('/usr/bin/revokescope');
      return { where: relative(ROOT, f), argv };
    }));
}

function dockerfileInvocations(): Invocation[] {
  const text = readFileSync(join(ROOT, 'deploy/Dockerfile'), 'utf8');
  const entrypoints = [...text.matchAll(/^ENTRYPOINT (.*)$/gm)].map((m) => JSON.parse(m[1]!) as string[]);
  expect(entrypoints.length).toBeGreaterThan(0);
  for (const e of entrypoints) expect(e).toEqual(['revokescope']);
  return [...text.matchAll(/^CMD (.*)$/gm)].map((m) => ({ where: 'deploy/Dockerfile CMD', argv: JSON.parse(m[1]!) as string[] }))
    .filter((i) => i.argv[0] !== '--help');
}

/** $(VAR) (Kubernetes) and ${VAR} (systemd) stand for a value. */
const concrete = (argv: string[]): string[] => argv.map((a) => (/\$[({]\w+[)}]/.test(a) ? a.replace(/\$[({]\w+[)}]/g, 'value') : a));

const helpCache = new Map<string, { status: number | null; out: string }>();
function cli(args: string[]): { status: number | null; out: string } {
  const key = args.join('\u0000');
  let r = helpCache.get(key);
  if (!r) {
    const p = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 30_000, cwd: ROOT });
    r = { status: p.status, out: `${p.stdout}${p.stderr}` };
    helpCache.set(key, r);
  }
  return r;
}

describe('deploy/', () => {
  beforeAll(() => {
    if (!existsSync(CLI)) throw new Error(`${relative(ROOT, CLI)} missing: run npm run build first`);
  });

  it('every YAML file parses', () => {
    expect(yamlFiles.length).toBeGreaterThanOrEqual(10);
    for (const f of yamlFiles) {
      for (const d of parseAllDocuments(readFileSync(f, 'utf8'))) expect(d.errors.map((e) => e.message), relative(ROOT, f)).toEqual([]);
    }
  });

  const invocations = (): Invocation[] => [...composeInvocations(), ...k8sInvocations(), ...systemdInvocations(), ...dockerfileInvocations()];

  it('uses every revokescope command a fleet needs', () => {
    const used = new Set(invocations().map((i) => i.argv[0]));
    for (const c of ['collect', 'correlate', 'serve', 'simulate', 'run']) expect(used, c).toContain(c);
  });

  it('every revokescope command and flag used exists in the CLI (parsed by the command, then --help)', () => {
    const problems: string[] = [];
    for (const inv of invocations()) {
      const [cmd, ...rest] = concrete(inv.argv);
      const help = cli([cmd!, '--help']);
      if (help.status !== 0) { problems.push(`${inv.where}: 'revokescope ${cmd} --help' exits ${help.status}: ${help.out.trim().split('\n')[0]}`); continue; }
      for (const flag of rest.filter((a) => a.startsWith('--')).map((a) => a.split('=')[0]!)) {
        if (!help.out.includes(flag)) problems.push(`${inv.where}: 'revokescope ${cmd}' has no ${flag} in its --help`);
      }
      // the real option parser sees the whole command line (strict: unknown flags and missing values fail)
      const parsed = cli([cmd!, ...rest, '--help']);
      if (parsed.status !== 0) problems.push(`${inv.where}: 'revokescope ${[cmd, ...rest].join(' ')} --help' exits ${parsed.status}: ${parsed.out.trim().split('\n')[0]}`);
    }
    expect(problems).toEqual([]);
  });

  it('every REVOKESCOPE_* variable set by deploy/ is read by the code', () => {
    const code = [...walk(join(ROOT, 'services'), (f) => f.endsWith('.ts')), ...walk(join(ROOT, 'collectors'), (f) => f.endsWith('.ts'))]
      .map((f) => readFileSync(f, 'utf8')).join('\n');
    const used = new Set<string>();
    for (const f of [...walk(join(ROOT, 'deploy'), () => true)]) {
      const text = readFileSync(f, 'utf8');
      for (const m of text.matchAll(/\bREVOKESCOPE_[A-Z0-9_]*[A-Z0-9]\b/g)) used.add(m[0]);
    }
    expect(used.size).toBeGreaterThan(5);
    const unknown = [...used].filter((v) => !new RegExp(`['"\`.]${v}\\b|env\\.${v}\\b`).test(code));
    expect(unknown, 'set in deploy/ but read nowhere in services/ or collectors/').toEqual([]);
  });
});

describe('Kubernetes manifests', () => {
  const find = (kind: string, name: string): any => k8s.find((k) => k.doc.kind === kind && k.doc.metadata?.name === name)?.doc;

  it('every object is named and namespaced; kustomization lists every file', () => {
    for (const { file, doc } of k8s) {
      expect(doc.apiVersion, file).toBeTruthy();
      expect(doc.kind, file).toBeTruthy();
      if (doc.kind === 'Kustomization') continue;
      expect(doc.metadata?.name, file).toBeTruthy();
      if (doc.kind !== 'Namespace') expect(doc.metadata.namespace, `${file} ${doc.kind}`).toBe('revokescope');
    }
    const kust = k8s.find((k) => k.doc.kind === 'Kustomization')!.doc;
    const files = readdirSync(join(ROOT, 'deploy/k8s')).filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml').sort();
    expect([...kust.resources].sort()).toEqual(files);
  });

  it('the collector DaemonSet can trace the host kernel, within limits', () => {
    const ds = find('DaemonSet', 'revokescope-collector');
    const pod = ds.spec.template.spec;
    expect(pod.hostPID).toBe(true);
    const c = pod.containers[0];
    expect(c.securityContext.privileged).toBe(true);
    const mounts = new Map<string, string>(c.volumeMounts.map((m: any) => [m.mountPath, m.name]));
    const hostPath = (name: string): string => pod.volumes.find((v: any) => v.name === name)?.hostPath?.path;
    for (const path of ['/sys/kernel/tracing', '/sys/kernel/debug', '/sys/kernel/btf']) expect(hostPath(mounts.get(path)!), path).toBe(path);
    expect([...mounts.keys()].some((p) => hostPath(mounts.get(p)!) === '/proc')).toBe(true);
    expect(ds.spec.selector.matchLabels).toEqual(ds.spec.template.metadata.labels && { 'app.kubernetes.io/name': ds.spec.template.metadata.labels['app.kubernetes.io/name'] });
  });

  it('every container has requests and limits', () => {
    for (const { where, spec } of podSpecs()) {
      for (const c of [...(spec.initContainers ?? []), ...spec.containers]) {
        expect(c.resources?.limits?.cpu, `${where}/${c.name}`).toBeTruthy();
        expect(c.resources?.limits?.memory, `${where}/${c.name}`).toBeTruthy();
        expect(c.resources?.requests, `${where}/${c.name}`).toBeTruthy();
      }
    }
  });

  it('correlator replicas do not exceed the events topic partitions', () => {
    const partitions = Number(find('ConfigMap', 'revokescope-config').data.REVOKESCOPE_KAFKA_PARTITIONS);
    const replicas = find('Deployment', 'revokescope-correlator').spec.replicas;
    expect(replicas).toBeGreaterThan(0);
    expect(replicas).toBeLessThanOrEqual(partitions);
  });

  it('the API Service selects the API pods; probes hit the API health routes', () => {
    const svc = find('Service', 'revokescope-api');
    const dep = find('Deployment', 'revokescope-api');
    for (const [k, v] of Object.entries(svc.spec.selector)) expect(dep.spec.template.metadata.labels[k]).toBe(v);
    const c = dep.spec.template.spec.containers[0];
    expect(c.readinessProbe.httpGet.path).toBe('/readyz');
    expect(c.livenessProbe.httpGet.path).toBe('/healthz');
    expect(svc.spec.ports[0].targetPort).toBe(c.ports[0].name);
  });

  it('secrets and config come from the ConfigMap and Secret that exist', () => {
    for (const { where, spec } of podSpecs()) {
      for (const c of [...(spec.initContainers ?? []), ...spec.containers]) {
        for (const e of c.envFrom ?? []) {
          if (e.configMapRef) expect(find('ConfigMap', e.configMapRef.name), where).toBeDefined();
          if (e.secretRef) expect(find('Secret', e.secretRef.name), where).toBeDefined();
        }
      }
    }
  });
});

describe('docker compose fleet demo', () => {
  it('has Kafka (KRaft), ClickHouse, Grafana with the plugin, correlator, API and simulated collectors', () => {
    const s = compose.services;
    for (const name of ['kafka', 'clickhouse', 'grafana', 'correlator', 'api', 'collector-sim']) expect(Object.keys(s)).toContain(name);
    expect(s.kafka.environment.KAFKA_PROCESS_ROLES).toBe('broker,controller');
    expect(s.grafana.environment.GF_PLUGINS_PREINSTALL_SYNC).toMatch(/^grafana-clickhouse-datasource@/);
    for (const svc of Object.values(s)) {
      for (const dep of Object.keys(svc.depends_on ?? {})) expect(Object.keys(s)).toContain(dep);
    }
  });

  it('bind mounts exist in the repository', () => {
    for (const [name, svc] of Object.entries(compose.services)) {
      for (const v of (svc.volumes ?? []) as string[]) {
        const src = v.split(':')[0]!;
        if (!src.startsWith('.')) continue;
        expect(existsSync(resolve(ROOT, 'deploy', src)), `${name}: ${src}`).toBe(true);
      }
    }
    expect(existsSync(resolve(ROOT, 'deploy', compose.services.correlator.build.context, compose.services.correlator.build.dockerfile))).toBe(true);
  });

  it('the Grafana data source provisioning gets every variable it expands', () => {
    const ds = readFileSync(join(ROOT, 'dashboards/provisioning/datasources/revokescope.yaml'), 'utf8')
      .split('\n').filter((l) => !l.trimStart().startsWith('#')).join('\n');
    const needed = [...ds.matchAll(/\$\{(\w+)\}/g)].map((m) => m[1]!);
    expect(needed.length).toBeGreaterThan(0);
    for (const v of needed) expect(Object.keys(compose.services.grafana.environment)).toContain(v);
  });
});

describe('systemd units', () => {
  for (const f of walk(join(ROOT, 'deploy/systemd'), (x) => x.endsWith('.service'))) {
    it(`${relative(ROOT, f)} is hardened`, () => {
      const keys = new Map<string, string>();
      for (const l of readFileSync(f, 'utf8').split('\n')) {
        const m = /^(\w+)=(.*)$/.exec(l);
        if (m) keys.set(m[1]!, m[2]!);
      }
      for (const [k, v] of Object.entries({ NoNewPrivileges: 'yes', ProtectSystem: 'strict', PrivateTmp: 'yes', ProtectKernelModules: 'yes',
        RestrictSUIDSGID: 'yes', LockPersonality: 'yes', SystemCallArchitectures: 'native' })) expect(keys.get(k), k).toBe(v);
      for (const k of ['CapabilityBoundingSet', 'RestrictAddressFamilies', 'SystemCallFilter', 'MemoryMax', 'EnvironmentFile']) expect(keys.has(k), k).toBe(true);
      expect(dirname(keys.get('EnvironmentFile')!)).toBe('/etc/revokescope');
    });
  }
});
