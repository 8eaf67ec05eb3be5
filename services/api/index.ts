export { buildApp, type AppOptions } from './app.js';
export { buildApi, createApi, listen, type Api, type ApiOptions } from './server.js';
export { episodesRoutes } from './routes/episodes.js';
export { findingsRoutes } from './routes/findings.js';
export { latencyRoutes } from './routes/latency.js';
