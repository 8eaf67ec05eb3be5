export { buildApi, listen, type ApiOptions } from './server.js';
export { episodesRoutes } from './routes/episodes.js';
export { findingsRoutes } from './routes/findings.js';
export { latencyRoutes } from './routes/latency.js';
