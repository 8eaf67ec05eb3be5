// The alerting engine as a plugin: `app.alerting`, initialised from the store (tables, built-in rules, alerts,
// silences, what was notified), its evaluator loop started (one evaluator per store: lease.ts) and stopped with
// the app, its readiness in /readyz. The routes are the alerting resources (routes/*.ts).
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { PLUGINS } from '../plugins.js';
import { AlertingEngine } from './engine.js';
import { defaultAlertingConfig, type AlertingConfig } from './types.js';

export interface AlertingPluginOptions {
  config?: Partial<AlertingConfig>;
  /** Run the evaluation loop (default true; config.evaluationIntervalMs = 0 also turns it off). */
  start?: boolean;
  /** This process's id in the evaluator lease (default: hostname/pid/random). */
  holder?: string;
}

declare module 'fastify' {
  interface FastifyInstance {
    alerting: AlertingEngine;
  }
}

/** A partial config over the defaults (the commands resolve deployments' settings: services/cli/settings.ts). */
export function alertingConfigOf(partial: Partial<AlertingConfig> = {}): AlertingConfig {
  return { ...defaultAlertingConfig, ...partial };
}

async function alerting(app: FastifyInstance, opts: AlertingPluginOptions): Promise<void> {
  const { client, database, now } = app.store;
  const config = alertingConfigOf({ ...opts.config, database });
  const engine = new AlertingEngine(client, config, { metrics: app.apiMetrics, now, log: app.log, holder: opts.holder });
  await engine.init();
  app.decorate('alerting', engine);
  app.registerReadinessCheck('alerting', () => { if (!engine.ready) throw new Error('alerting engine not initialised'); });
  app.addHook('onClose', async () => { await engine.stop(); });
  if (opts.start ?? true) engine.start();
}

export const alertingEnginePlugin = fp(alerting, { name: PLUGINS.alerting, fastify: '5.x',
  dependencies: [PLUGINS.store, PLUGINS.metrics, PLUGINS.observability] });
