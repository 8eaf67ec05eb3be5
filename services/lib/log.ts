// What the pipeline and the transports log through: the command's pino logger (services/cli/logger.ts) fits; the
// default is silence.
export interface Log {
  info(msg: string): void;
  warn(msg: string): void;
  error(msg: string): void;
}

export const silentLog: Log = { info() {}, warn() {}, error() {} };
