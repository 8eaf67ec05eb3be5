// The names of the API's plugins (services/api/app.ts registers them in this order) and what every resource needs
// before it: fastify-plugin checks a plugin's declared dependencies when it is registered.
export const PLUGINS = {
  errors: 'revokescope-errors',
  security: 'revokescope-security',
  params: 'revokescope-params',
  store: 'revokescope-store',
  metrics: 'revokescope-metrics',
  observability: 'revokescope-observability',
  alerting: 'revokescope-alerting',
} as const;

/** A resource's routes must be seen by the security, parameter and OpenAPI onRoute hooks, and read the store. */
export const RESOURCE_DEPENDENCIES = [PLUGINS.errors, PLUGINS.security, PLUGINS.params, PLUGINS.store, PLUGINS.observability];
/** The alerting resources also need the engine (app.alerting). */
export const ALERTING_DEPENDENCIES = [...RESOURCE_DEPENDENCIES, PLUGINS.alerting];
