// The log of long-running commands: pino, JSON lines on stderr, level from --log-level / REVOKESCOPE_LOG_LEVEL.
// fastify logs through the same instance (requests, and a 5xx with its cause).
import { pino, type Logger } from 'pino';

export type { Logger } from 'pino';

/** The command's logger; `destination` (default: stderr, asynchronous) is where the JSON lines go. */
export function createLogger(command: string, level: string, destination: pino.DestinationStream = pino.destination({ fd: 2, sync: false })): Logger {
  return pino({ name: `revokescope ${command}`, level, base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime }, destination);
}
