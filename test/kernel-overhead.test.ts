// The kernel-overhead bench (bench/kernel-overhead.ts, issue 17): the guest script runs each collector label it is
// given (a `_stacks` label once ran as its plain backend), and the numbers it prints come out of bench.txt as written.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { labelCost, parseBench, replayCost, revokePath, stackCosts, summarize, withoutStacks } from '../bench/kernel-overhead.js';
import { replayRaw } from '../collectors/agent/replay.js';
import { bodyOf } from '../services/core/model.js';

const GUEST = join(import.meta.dirname, 'kernel-lab/guest.sh');

/** A function of guest.sh by name, its text as written (up to the first line that is only "}"). */
function guestFunction(name: string): string {
  const text = readFileSync(GUEST, 'utf8');
  const start = text.indexOf(`${name}() {`);
  expect(start, name).toBeGreaterThanOrEqual(0);
  return text.slice(start, text.indexOf('\n}\n', start) + 3);
}

describe('guest.sh collector_start', () => {
  it('starts each label with its flags and leaves the caller\'s loop variable alone', () => {
    const dir = mkdtempSync(join(tmpdir(), 'rs-guest-'));
    // the function as written, with its result paths moved into dir and chroot replaced by one that prints its command
    const fn = guestFunction('collector_start').replaceAll('/tmp/out/', `${dir}/`).replaceAll('/out/', `${dir}/`);
    const script = `chroot() { shift 2; echo "$*"; }\nRS_dist=/dist; AGENT_CPU=\n${fn}\n` +
      `for b in ftrace ftrace_stacks bpftrace_global_stacks; do collector_start $b; echo "$b" >> ${dir}/labels; done; wait\n`;
    const shell = spawnSync('sh', ['-c', 'command -v busybox']).status === 0 ? ['busybox', 'sh'] : ['sh'];
    const r = spawnSync(shell[0]!, [...shell.slice(1), '-c', script], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(readFileSync(join(dir, 'labels'), 'utf8').split('\n').filter(Boolean)).toEqual(['ftrace', 'ftrace_stacks', 'bpftrace_global_stacks']);
    const args = (label: string) => readFileSync(join(dir, `collect-${label}.log`), 'utf8');
    expect(args('ftrace')).toMatch(/collect --backend ftrace --out \S+trace-ftrace\.jsonl/);
    expect(args('ftrace_stacks')).toMatch(/collect --backend ftrace --stacks --out \S+trace-ftrace_stacks\.jsonl/);
    expect(args('bpftrace_global_stacks')).toMatch(/collect --backend bpftrace --stacks --no-call-sites --out \S+trace-bpftrace_global_stacks\.jsonl/);
  });
});

describe('bench.txt', () => {
  // two revoke runs per phase (µs per iteration, minimum: 1000 none; ftrace off 1000, on 1100; ftrace_stacks off 1000,
  // without its stack triggers 1150, on 1400; bpftrace 1050, bpftrace_stacks 1250) and the agents' CPU
  const storms = (phase: string, ...us: number[]) => [`phase ${phase}`, ...us.map((u) => `STORM revoke 100 ${u * 100_000} ${u * 1000}.0`)];
  const text = [
    ...storms('baseline', 1000, 1200),
    ...storms('with-ftrace/off', 1000, 1300), ...storms('with-ftrace', 1100, 1500), 'AGENT ftrace 1200 30.5',
    ...storms('with-ftrace_stacks/off', 1000, 1100), ...storms('with-ftrace_stacks/nostacks', 1150, 1250), ...storms('with-ftrace_stacks', 1400, 1600),
    'AGENT ftrace_stacks 1500 31',
    ...storms('with-bpftrace', 1050, 1100), 'AGENT bpftrace 400 20',
    ...storms('with-bpftrace_stacks', 1250, 1300), 'AGENT bpftrace_stacks 500 20',
    ...storms('baseline-after', 1010), 'CALLS mmap down_write 4100',
  ].join('\n');

  it('parses storms, calls and the agents\' CPU', () => {
    const f = parseBench(text);
    expect(f.runs.filter((r) => r.phase === 'with-ftrace_stacks').map((r) => r.nsPerIteration)).toEqual([1.4e6, 1.6e6]);
    expect(f.agents).toEqual({ ftrace: { cpuTicks: 1200, seconds: 30.5 }, ftrace_stacks: { cpuTicks: 1500, seconds: 31 },
      bpftrace: { cpuTicks: 400, seconds: 20 }, bpftrace_stacks: { cpuTicks: 500, seconds: 20 } });
    expect(f.calls).toEqual({ mmap: { down_write: 4100 } });
  });

  it('the price of stacks: each label against its own reference, per iteration and per stack', () => {
    const f = parseBench(text);
    const s = summarize(f, {});
    const revoke = s.find((x) => x.storm === 'revoke')!;
    expect(revoke.perBackend.ftrace!.slowdownPct).toBeCloseTo(10);
    expect(revoke.perBackend.ftrace_stacks!.slowdownPct).toBeCloseTo(40);
    expect(revoke.perBackend.ftrace_stacks!.noStacks).toEqual({ min: 1.15e6, median: 1.25e6, runs: 2 });
    expect(Object.keys(revoke.perBackend)).toEqual(['ftrace', 'ftrace_stacks', 'bpftrace', 'bpftrace_stacks']);
    expect(revoke.perBackend.bpftrace!.slowdownPct).toBeCloseTo(5);   // no off phase: against the no-collector minimum
    // 3 events with a stack per iteration in both _stacks traces; the agents read 10,000 (ftrace) and 5,000 (bpftrace) hits
    const trace = (n: number) => JSON.stringify({ events: [
      ...Array.from({ length: 3 * n }, () => ({ comm: 'workload', stackId: '281474976710655' })),
      ...Array.from({ length: n }, () => ({ comm: 'workload' })), { comm: 'storm' }] });
    const log = (hits: number) => `collect: ftrace attached\ncollect: {"hits":${hits},"events":1}\n`;
    const labels = {
      ftrace: labelCost('ftrace', f, JSON.stringify({ events: [{ comm: 'workload' }] }), log(10_000)),
      ftrace_stacks: labelCost('ftrace_stacks', f, trace(200), log(10_000)),
      bpftrace: labelCost('bpftrace', f, '', log(5000)),
      bpftrace_stacks: labelCost('bpftrace_stacks', f, trace(200), log(5000)),
    };
    // events come from the phases with events on (with and without their triggers: 400 iterations), stacks from 200
    expect(labels.ftrace_stacks).toMatchObject({ eventsPerIteration: 2, stackEventsPerIteration: 3, hits: 10_000, agentCpuS: 15 });
    expect(labels.bpftrace_stacks).toMatchObject({ eventsPerIteration: 4, stackEventsPerIteration: 3 });
    expect(labels.ftrace_stacks.agentUsPerHit).toBeCloseTo(1500);
    const costs = stackCosts(s, labels);
    expect(costs.map((c) => [c.backend, c.sameAgent])).toEqual([['ftrace', true], ['bpftrace', false]]);
    expect(costs[0]!.extraUsPerIteration).toBeCloseTo(250);            // 1400 − 1150, the same agent without its triggers
    expect(costs[0]!.extraPct).toBeCloseTo(25);                        // of its agent with events off (1000)
    expect(costs[0]!.usPerStack).toBeCloseTo(250 / 3);
    expect(costs[0]!.agentExtraUsPerHit).toBeCloseTo(300);             // 15 s vs 12 s over 10,000 hits
    expect(costs[1]!.extraUsPerIteration).toBeCloseTo(200);            // (1250 − 1000) − (1050 − 1000), both against no collector
    expect(costs[1]!.extraPct).toBeCloseTo(20);
  });

  it('a label without its plain run has a stack price only when it ran without its triggers too', () => {
    const f = parseBench(storms('baseline', 1000).concat(storms('with-bpftrace_stacks', 1200)).join('\n'));
    expect(stackCosts(summarize(f, {}), {})).toEqual([]);
    const g = parseBench([...storms('baseline', 1000), ...storms('with-ftrace_stacks/off', 1000), ...storms('with-ftrace_stacks/nostacks', 1100),
      ...storms('with-ftrace_stacks', 1300)].join('\n'));
    expect(stackCosts(summarize(g, {}), {}).map((c) => [c.backend, c.sameAgent, Math.round(c.extraUsPerIteration)])).toEqual([['ftrace', true, 200]]);
  });
});

describe('the revoke path from the events\' kernel timestamps', () => {
  it('splits zap, lock wait and hold by whether the step took a stack', () => {
    const ev = (ts: number, body: object, stackId?: string) => ({ tsNs: String(ts), comm: 'workload', device: 'd', ...(stackId ? { stackId } : {}), ...body });
    const trace = JSON.stringify({ events: [
      ev(0, { lockAcquire: { waitNs: '50000' } }, '7'), ev(10_000, { zap: { durationNs: '80000' } }, '8'), ev(300_000, { lockRelease: {} }),
      ev(1_000_000, { lockAcquire: { waitNs: '5000' } }), ev(1_010_000, { zap: { durationNs: '40000' } }), ev(1_200_000, { lockRelease: {} }),
      { ...ev(2_000_000, { zap: { durationNs: '1' } }), comm: 'storm' },
    ] });
    const p = revokePath(trace);
    expect(p.withStack).toEqual({ zap: { n: 1, p10: 80, median: 80, p90: 80 }, wait: { n: 1, p10: 50, median: 50, p90: 50 },
      hold: { n: 1, p10: 300, median: 300, p90: 300 }, revoke: { n: 1, p10: 90, median: 90, p90: 90 } });   // 10 + 80 µs after the acquire
    expect(p.withoutStack.zap.median).toBe(40);
    expect(p.withoutStack.hold.median).toBe(200);
    expect(p.withoutStack.revoke.median).toBe(50);
  });
});

describe('the agent\'s work with and without stacks (replay of a lab capture)', () => {
  const FIX = join(import.meta.dirname, 'fixtures/kernel/6.12');
  it.each(['ftrace', 'bpftrace'])('%s: the capture without its stack lines decodes the same events, none naming a stack', (backend) => {
    const raw = readFileSync(join(FIX, `raw-${backend}-field-who.txt`), 'utf8');
    const host = { hostname: 'lab', bootId: 'who' };
    const full = replayRaw(raw, host).events, plain = replayRaw(withoutStacks(raw), host).events;
    expect(full.filter((e) => e.stackId).length).toBeGreaterThan(50);
    expect(plain.filter((e) => e.stackId)).toEqual([]);
    expect(plain.map((e) => [e.tsNs, e.device, bodyOf(e)])).toEqual(full.map((e) => [e.tsNs, e.device, bodyOf(e)]));
    const c = replayCost(raw, 1);
    // every event that names a stack comes from a hit that printed one (some such hits make no event: before the first
    // acquire, an entry whose return never came)
    expect(c.stackHits).toBeGreaterThanOrEqual(full.filter((e) => e.stackId).length);
    expect(c.hits).toBeGreaterThan(c.stackHits);
    expect(c.usPerHitWithStacks).toBeGreaterThan(0);
    expect(c.usPerHitWithout).toBeGreaterThan(0);
  });
});
