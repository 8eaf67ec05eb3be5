// Errors about trace input. Every message names where the bad data is: the file, then the 1-based line
// (.jsonl) or the 1-based record index and the byte offset of its length prefix (.pb).

export interface TraceLocation {
  file: string;
  /** .jsonl: 1-based line number. */
  line?: number;
  /** .pb: 1-based record index. */
  record?: number;
  /** .pb: byte offset of the record's length prefix. */
  offset?: number;
}

export class TraceError extends Error {
  override readonly name = 'TraceError';
  constructor(readonly where: TraceLocation, readonly reason: string) {
    super(`${describeLocation(where)}: ${reason}`);
  }
}

export function describeLocation(w: TraceLocation): string {
  if (w.line !== undefined) return `${w.file}:${w.line}`;
  if (w.record !== undefined) return `${w.file}: record ${w.record} at byte ${w.offset ?? '?'}`;
  return w.file;
}

/** A problem inside one message, with the field path: defined with the rules it reports (core/validate.ts). */
export { FieldError } from '../core/validate.js';
