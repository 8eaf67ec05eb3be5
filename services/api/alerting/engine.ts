// The alerting engine: rules → alerts (pending → firing → resolved, Prometheus semantics), silences, and
// notification dispatch. State lives in memory for fast reads and is written through to the store, from
// which a new process reloads it (alert state survives a restart; a pending alert keeps its activeAt).
// One engine per store evaluates and notifies: the one holding the lease (lease.ts); the others follow the
// store (they reload rules, alerts and silences at each tick) so every replica serves the same state.
import { randomUUID } from 'node:crypto';
import type { ClickHouseClient } from '@clickhouse/client';
import type { FastifyBaseLogger } from 'fastify';
import { Conflict, RuleRejected, UnknownId } from '../errors.js';
import type { ApiMetrics } from '../observability/metrics.js';
import { Lease } from './lease.js';
import { parseDurationMs } from './duration.js';
import { MatchBudget, MatchBudgetError, matchesAll, parseMatchers, validateMatcher, MatcherError, type Matcher } from './matchers.js';
import { Notifier } from './notify.js';
import { evaluateQuery } from './queries.js';
import { alertLabels, checkRule, compare, DEFAULT_RULES, expandTemplate, fingerprint, upgradedBuiltinRules } from './rules.js';
import { AlertingStore } from './store.js';
import type { AlertingConfig, AlertRecord, Rule, Silence } from './types.js';

export interface RuleHealth {
  lastEvaluation: number;
  evaluationMs: number;
  lastError: string;
  series: number;
}

export type SilenceState = 'pending' | 'active' | 'expired';

export interface EngineOptions {
  metrics?: ApiMetrics;
  /** Clock (tests pin it). */
  now?: () => number;
  /** Lease changes and failed evaluations go here. */
  log?: FastifyBaseLogger;
  /** This process's id in the lease (default: hostname/pid/random). */
  holder?: string;
}

export class AlertingEngine {
  readonly store: AlertingStore;
  readonly notifier: Notifier;
  private rules = new Map<string, Rule>();
  private knownRuleIds = new Set<string>();
  readonly alerts = new Map<string, AlertRecord>();
  private silences = new Map<string, Silence>();
  readonly health = new Map<string, RuleHealth>();
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;
  readonly startedAt = Date.now();
  lastEvaluation = 0;
  ready = false;
  readonly now: () => number;
  /** Which engine of the store evaluates (lease.ts). */
  readonly lease: Lease;
  private readonly metrics?: ApiMetrics;
  private readonly log?: FastifyBaseLogger;

  constructor(client: ClickHouseClient, readonly config: AlertingConfig, o: EngineOptions = {}) {
    this.now = o.now ?? Date.now;
    this.metrics = o.metrics;
    this.log = o.log;
    this.store = new AlertingStore(client, config.database, config.cluster);
    this.notifier = new Notifier(config, this.store, o.metrics, this.now);
    this.lease = new Lease({ client, database: config.database, now: this.now, holder: o.holder,
      ttlMs: config.leaseTtlMs > 0 ? config.leaseTtlMs : Math.max(3 * config.evaluationIntervalMs, 30_000) });
    if (o.metrics) o.metrics.alertCounts = () => this.counts();
  }

  /** Create tables, seed built-in rules once (and upgrade unedited ones), load rules/alerts/silences/notification state. */
  async init(): Promise<void> {
    await this.store.migrate();
    await this.reloadRules();
    if (this.config.seedDefaultRules) {
      const upgraded = upgradedBuiltinRules([...this.rules.values()], this.now());
      if (upgraded.length) {
        await this.store.saveRules(upgraded);
        for (const r of upgraded) this.rules.set(r.id, r);
      }
      const missing = DEFAULT_RULES.filter((r) => !this.knownRuleIds.has(r.id)).map((r) => ({ ...r, updatedAt: this.now() }));
      if (missing.length) {
        await this.store.saveRules(missing);
        for (const r of missing) { this.rules.set(r.id, r); this.knownRuleIds.add(r.id); }
      }
    }
    for (const a of await this.store.loadAlerts()) this.alerts.set(a.fingerprint, a);
    await this.reloadSilences();
    await this.notifier.init();
    this.ready = true;
  }

  private async reloadRules(): Promise<void> {
    const { rules, knownIds } = await this.store.loadRules();
    this.rules = new Map(rules.map((r) => [r.id, r]));
    this.knownRuleIds = knownIds;
  }

  private async reloadSilences(): Promise<void> {
    const list = await this.store.loadSilences();
    this.silences = new Map(list.map((s) => [s.id, s]));
  }

  start(): void {
    if (this.config.evaluationIntervalMs <= 0 || this.timer || this.stopped) return;
    const tick = (): void => {
      this.running = this.evaluate().then(() => undefined, (err) => { this.log?.error({ err }, 'rule evaluation failed'); })
        .finally(() => { this.running = undefined; if (!this.stopped) loop(); });
    };
    const loop = (): void => {
      this.timer = setTimeout(tick, this.config.evaluationIntervalMs);
      this.timer.unref();
    };
    tick();
  }

  /** Stop the loop, finish (and log) the deliveries under way, then withdraw the lease: the next replica in line
   * evaluates from its next tick, knowing what was sent. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.running;
    await this.notifier.idle();
    await this.lease.release().catch((err) => this.log?.warn({ err }, 'could not withdraw the rule evaluator lease; it lapses by itself'));
  }

  // ---------------------------------------------------------------- rules
  listRules(): Rule[] { return [...this.rules.values()].sort((a, b) => a.id.localeCompare(b.id)); }
  getRule(id: string): Rule | undefined { return this.rules.get(id); }

  async putRule(input: Omit<Rule, 'builtin' | 'updatedAt'> & { builtin?: boolean }, create: boolean): Promise<Rule> {
    const existing = this.rules.get(input.id);
    if (create && existing) throw new Conflict(`rule ${input.id} exists`);
    if (!create && !existing) throw new UnknownId(`rule ${input.id} not found`);
    const rule: Rule = { ...input, builtin: existing?.builtin ?? false, updatedAt: this.now() };
    try { checkRule(rule); } catch (e) { throw new RuleRejected((e as Error).message); }
    await this.store.saveRules([rule]);
    this.rules.set(rule.id, rule);
    this.knownRuleIds.add(rule.id);
    return rule;
  }

  async deleteRule(id: string): Promise<void> {
    if (!this.rules.has(id)) throw new UnknownId(`rule ${id} not found`);
    await this.store.deleteRule(id);
    this.rules.delete(id);
  }

  // ---------------------------------------------------------------- evaluation
  /** One tick: renew the lease; the holder evaluates every rule at now() and notifies, the others reload what
   * the holder wrote. Resolves with whether this engine evaluated. The loop runs it again only after the
   * previous one finished. */
  async evaluate(): Promise<boolean> {
    const wasHolder = this.lease.held;
    const holds = await this.lease.renew();
    if (holds !== wasHolder) {
      this.log?.info({ holder: this.lease.holder }, holds ? 'this replica holds the rule evaluator lease: evaluating rules and notifying'
        : 'another replica holds the rule evaluator lease: following its alerts');
    }
    if (holds && !wasHolder) await this.follow(true); // take over from the store what the previous holder did and sent
    else if (holds) await this.reloadRules();          // rules edited through another replica
    if (!holds) {
      await this.follow(false);
      this.lastEvaluation = this.now();
      return false;
    }
    await this.evaluateRules();
    return true;
  }

  /** Reload rules, alerts and silences from the store (and, taking over, what was notified). */
  private async follow(takeOver: boolean): Promise<void> {
    await this.reloadRules();
    await this.reloadSilences();
    const alerts = await this.store.loadAlerts();
    this.alerts.clear();
    for (const a of alerts) this.alerts.set(a.fingerprint, a);
    if (takeOver) await this.notifier.init();
  }

  private async evaluateRules(): Promise<void> {
    const now = this.now();
    await this.reloadSilences().catch(() => undefined);
    const changed: AlertRecord[] = [];
    const removed: AlertRecord[] = [];
    const ruleIds = new Set<string>();
    for (const rule of this.rules.values()) {
      if (!rule.enabled) continue;
      ruleIds.add(rule.id);
      await this.evaluateRule(rule, now, changed, removed);
    }
    // alerts of deleted or disabled rules resolve (firing) or vanish (pending)
    for (const a of this.alerts.values()) {
      if (ruleIds.has(a.ruleId)) continue;
      this.retire(a, now, changed, removed);
    }
    for (const a of removed) this.alerts.delete(a.fingerprint);
    await this.store.saveAlerts(changed);
    await this.store.saveAlerts(removed, true);
    this.lastEvaluation = now;
    this.notifier.dispatch([...this.alerts.values()], (a) => this.silencedBy(a.labels, now).length > 0, now);
  }

  private retire(a: AlertRecord, now: number, changed: AlertRecord[], removed: AlertRecord[]): void {
    if (a.state === 'pending') {
      removed.push(a);
    } else if (a.state === 'firing') {
      a.state = 'resolved';
      a.resolvedAt = now;
      a.updatedAt = now;
      changed.push(a);
    } else if (now - a.resolvedAt > this.config.resolvedRetentionMs) {
      removed.push(a);
    }
  }

  private async evaluateRule(rule: Rule, now: number, changed: AlertRecord[], removed: AlertRecord[]): Promise<void> {
    const t0 = performance.now();
    const h: RuleHealth = { lastEvaluation: now, evaluationMs: 0, lastError: '', series: 0 };
    let samples;
    try {
      samples = await evaluateQuery({ client: this.store.client, database: this.config.database, now }, rule.query);
    } catch (e) {
      h.lastError = (e as Error).message.slice(0, 500);
      h.evaluationMs = performance.now() - t0;
      this.health.set(rule.id, h);
      this.metrics?.ruleEvaluationFailures.inc({ rule_id: rule.id });
      return; // alerts of a failing rule keep their state
    }
    h.evaluationMs = performance.now() - t0;
    this.metrics?.ruleEvaluation.observe({ rule_id: rule.id }, h.evaluationMs / 1000);
    const forMs = parseDurationMs(rule.for);
    const seen = new Set<string>();
    for (const s of samples) {
      if (!compare(rule.threshold.op, s.value, rule.threshold.value)) continue;
      const labels = alertLabels(rule, s.labels);
      const fp = fingerprint(labels);
      seen.add(fp);
      const annotations: Record<string, string> = {};
      for (const [k, v] of Object.entries(rule.annotations)) annotations[k] = expandTemplate(v, labels, s.value);
      let a = this.alerts.get(fp);
      if (!a || a.state === 'resolved') {
        a = { fingerprint: fp, ruleId: rule.id, state: 'pending', labels, annotations, value: s.value, activeAt: now, firedAt: 0,
          resolvedAt: 0, updatedAt: now };
        this.alerts.set(fp, a);
      }
      a.value = s.value;
      a.annotations = annotations;
      a.updatedAt = now;
      if (a.state === 'pending' && now - a.activeAt >= forMs) {
        a.state = 'firing';
        a.firedAt = now;
      }
      changed.push(a);
    }
    h.series = seen.size;
    this.health.set(rule.id, h);
    for (const a of this.alerts.values()) {
      if (a.ruleId === rule.id && !seen.has(a.fingerprint)) this.retire(a, now, changed, removed);
    }
  }

  counts(): Record<string, number> {
    const now = this.now();
    const out: Record<string, number> = { pending: 0, firing: 0, resolved: 0, active: 0, suppressed: 0 };
    for (const a of this.alerts.values()) {
      out[a.state]!++;
      if (a.state === 'firing') out[this.silencedBy(a.labels, now).length ? 'suppressed' : 'active']!++;
    }
    return out;
  }

  // ---------------------------------------------------------------- silences
  silenceState(s: Silence, now = this.now()): SilenceState {
    if (s.endsAt <= now) return 'expired';
    if (s.startsAt > now) return 'pending';
    return 'active';
  }

  listSilences(): Silence[] { return [...this.silences.values()]; }
  getSilence(id: string): Silence | undefined { return this.silences.get(id); }

  /** Active silences matching these labels. With a budget (a request's), regex work past it throws
   * MatchBudgetError; a stored silence whose regex this engine refuses (stored by an older version) matches
   * nothing. */
  silencedBy(labels: Record<string, string>, now = this.now(), budget?: MatchBudget): string[] {
    const out: string[] = [];
    for (const s of this.silences.values()) {
      if (this.silenceState(s, now) !== 'active') continue;
      try {
        if (matchesAll(s.matchers, labels, budget)) out.push(s.id);
      } catch (e) {
        if (e instanceof MatchBudgetError || !(e instanceof MatcherError)) throw e;
      }
    }
    return out;
  }

  /** A budget for one evaluation of matchers on behalf of a request. */
  matchBudget(): MatchBudget { return new MatchBudget(this.config.matchBudgetMs); }

  /** Create or update a silence (Alertmanager semantics: updating an expired one, or changing the matchers
   * of an active one, makes a new silence; the old one expires). Returns the id. */
  async upsertSilence(input: { id?: string; matchers: Matcher[]; startsAt: number; endsAt: number; createdBy: string; comment: string }): Promise<string> {
    const now = this.now();
    let matchers: Matcher[];
    try {
      const budget = this.matchBudget();
      matchers = input.matchers.map((m) => validateMatcher({ name: m.name, value: m.value, isRegex: m.isRegex, isEqual: m.isEqual ?? true }, budget));
    } catch (e) {
      throw new RuleRejected(`invalid silence: ${(e as Error).message}`);
    }
    if (matchers.length === 0) throw new RuleRejected('invalid silence: at least one matcher required');
    if (matchers.every((m) => matchesAll([m], {}))) throw new RuleRejected('invalid silence: at least one matcher must not match the empty string');
    try { // what every read will do with it: match it against the alerts (their answers are remembered)
      const budget = this.matchBudget();
      for (const a of this.alerts.values()) matchesAll(matchers, a.labels, budget);
    } catch (e) {
      if (e instanceof MatchBudgetError) throw new RuleRejected(`invalid silence: ${e.message}`);
      throw e;
    }
    if (!Number.isFinite(input.startsAt) || !Number.isFinite(input.endsAt)) throw new RuleRejected('invalid silence: bad time');
    if (input.endsAt < input.startsAt) throw new RuleRejected('invalid silence: endsAt before startsAt');
    if (input.endsAt <= now) throw new RuleRejected('invalid silence: endsAt is in the past');
    let id = input.id || undefined;
    if (id !== undefined) {
      const old = this.silences.get(id);
      if (!old) throw new UnknownId(`silence ${id} not found`);
      const sameMatchers = JSON.stringify(old.matchers) === JSON.stringify(matchers);
      if (this.silenceState(old, now) === 'expired' || (this.silenceState(old, now) === 'active' && !sameMatchers)) {
        await this.expireSilence(id);
        id = undefined;
      }
    }
    const s: Silence = { id: id ?? randomUUID(), matchers, startsAt: id ? input.startsAt : Math.max(input.startsAt, now),
      endsAt: input.endsAt, createdBy: input.createdBy, comment: input.comment, updatedAt: now };
    await this.store.saveSilence(s);
    this.silences.set(s.id, s);
    return s.id;
  }

  async expireSilence(id: string): Promise<void> {
    const s = this.silences.get(id);
    if (!s) throw new UnknownId(`silence ${id} not found`);
    const now = this.now();
    const state = this.silenceState(s, now);
    if (state === 'expired') return;
    const next: Silence = { ...s, endsAt: now, startsAt: state === 'pending' ? now : s.startsAt, updatedAt: now };
    await this.store.saveSilence(next);
    this.silences.set(id, next);
  }

  /** Parse `filter` query values (Alertmanager matcher strings); a bad one is a MatcherError (400). */
  static parseFilter(filter: string[] | string | undefined, budget?: MatchBudget): Matcher[] {
    const list = filter === undefined ? [] : Array.isArray(filter) ? filter : [filter];
    return list.flatMap((f) => parseMatchers(f, budget));
  }
}
