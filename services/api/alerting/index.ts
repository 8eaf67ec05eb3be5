// Alerting (DESIGN §6): rules evaluated against the store into alerts, silences, notifications, and the
// resources that serve them — /api/v1/rules (routes/rules.ts), /api/v1/alerts and /api/v2/alerts[/groups]
// (routes/alerts.ts), /api/v2/silences (routes/silences.ts), /api/v2/status and /receivers (routes/receivers.ts).
// The engine is a plugin (plugin.ts); one engine per store evaluates (lease.ts). services/api/app.ts registers all.
export { AlertingEngine } from './engine.js';
export { alertingConfigOf, alertingEnginePlugin, type AlertingPluginOptions } from './plugin.js';
export { DEFAULT_RULES } from './rules.js';
export { alertsPlugin } from './routes/alerts.js';
export { receiversPlugin } from './routes/receivers.js';
export { rulesPlugin } from './routes/rules.js';
export { silencesPlugin } from './routes/silences.js';
export type { AlertingConfig, ReceiverConfig, Rule } from './types.js';
