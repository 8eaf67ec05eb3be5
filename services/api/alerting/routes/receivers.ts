// /api/v2/status and /api/v2/receivers: the alerting configuration as Alertmanager v2 shows it.
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { ALERTING_DEPENDENCIES } from '../../plugins.js';
import { DEFAULT_RECEIVER } from '../notify.js';
import { alertmanagerStatus } from '../schemas.js';
import type { AlertingConfig } from '../types.js';
import { iso, tags } from './common.js';

const VERSION = '0.1.0';

async function receivers(app: FastifyInstance): Promise<void> {
  const engine = app.alerting;
  const config = engine.config;

  app.get('/api/v2/status', {
    schema: { tags: tags.v2, operationId: 'getStatus', summary: 'Status of this alerting API (Alertmanager v2 shape)',
      response: { 200: alertmanagerStatus } },
  }, async () => ({
    cluster: { name: 'revokescope', status: 'disabled', peers: [] },
    versionInfo: { branch: 'main', buildDate: '', buildUser: 'revokescope', goVersion: `node${process.versions.node}`, revision: '', version: VERSION },
    config: { original: configText(config) },
    uptime: iso(engine.startedAt),
  }));

  app.get('/api/v2/receivers', {
    schema: { tags: tags.v2, operationId: 'getReceivers', summary: 'Get list of all receivers',
      response: { 200: { type: 'array', items: { type: 'object', required: ['name'], properties: { name: { type: 'string' } } } } } },
  }, async () => engine.notifier.receiverNames().map((name) => ({ name })));
}

/** The routing part of the configuration, Alertmanager-style YAML (URLs without credentials or headers). */
function configText(c: AlertingConfig): string {
  const lines = ['route:', `  receiver: ${DEFAULT_RECEIVER}`, `  group_by: [${c.groupBy.join(', ')}]`,
    `  repeat_interval: ${Math.round(c.repeatIntervalMs / 1000)}s`, 'receivers:', `- name: ${DEFAULT_RECEIVER}`];
  for (const r of c.receivers) {
    let url = r.url;
    try { const u = new URL(r.url); u.username = ''; u.password = ''; url = u.toString(); } catch { /* keep */ }
    lines.push(`- name: ${r.name}`, `  # ${r.type}`, `  webhook_configs: [{ url: '${url}', send_resolved: ${r.sendResolved !== false} }]`);
  }
  return lines.join('\n') + '\n';
}

export const receiversPlugin = fp(receivers, { name: 'revokescope-receivers', fastify: '5.x', encapsulate: true, dependencies: ALERTING_DEPENDENCIES });
