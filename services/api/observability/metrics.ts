// Prometheus metrics of the API process (prom-client, one registry per server so tests can run several).
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

export class ApiMetrics {
  readonly registry = new Registry();
  readonly requestDuration: Histogram<'method' | 'route' | 'status_code'>;
  readonly ruleEvaluation: Histogram<'rule_id'>;
  readonly ruleEvaluationFailures: Counter<'rule_id'>;
  readonly alerts: Gauge<'state'>;
  readonly notifications: Counter<'receiver' | 'outcome'>;
  /** Filled by the alerting engine: alerts per state (firing alerts split into active/suppressed too). */
  alertCounts: () => Record<string, number> = () => ({});

  constructor(opts: { defaultMetrics?: boolean } = {}) {
    if (opts.defaultMetrics ?? true) collectDefaultMetrics({ register: this.registry, prefix: 'revokescope_api_' });
    this.requestDuration = new Histogram({
      name: 'revokescope_http_request_duration_seconds', help: 'HTTP request latency by route and status',
      labelNames: ['method', 'route', 'status_code'], registers: [this.registry],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    });
    this.ruleEvaluation = new Histogram({
      name: 'revokescope_rule_evaluation_duration_seconds', help: 'Time to evaluate one alerting rule against the store',
      labelNames: ['rule_id'], registers: [this.registry], buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    });
    this.ruleEvaluationFailures = new Counter({
      name: 'revokescope_rule_evaluation_failures_total', help: 'Rule evaluations that failed', labelNames: ['rule_id'],
      registers: [this.registry],
    });
    const alertCounts = () => this.alertCounts();
    this.alerts = new Gauge({
      name: 'revokescope_alerts', help: 'Alerts by state (pending, firing, resolved; active/suppressed split firing by silences)',
      labelNames: ['state'], registers: [this.registry],
      collect() {
        this.reset();
        for (const [state, n] of Object.entries(alertCounts())) this.set({ state }, n);
      },
    });
    this.notifications = new Counter({
      name: 'revokescope_notifications_total', help: 'Notification deliveries by receiver and outcome (ok, failed, retried)',
      labelNames: ['receiver', 'outcome'], registers: [this.registry],
    });
  }
}
