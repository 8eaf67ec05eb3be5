// The log of long-running commands: pino, JSON lines on stderr, level from --log-level / REVOKESCOPE_LOG_LEVEL.
// fastify logs through the same instance (requests, and a 5xx with its cause).
import { pino, type Logger } from 'pino';

export type { Logger } from 'pino';

export function createLogger(command: string, level: string): Logger {
  return pino({ name: `revokescope ${command}`, level, base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime },
    pino.destination({ fd: 2, sync: false }));
}
