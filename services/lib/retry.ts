// One retry loop for the adapters (Kafka connects and sends, store inserts, webhook deliveries): `tries` attempts in
// all (Infinity: until it succeeds, `stop()` says so, or `signal` aborts), only for errors `retriable` accepts, with
// a linear (base × attempt) or exponential (base × 2^(attempt−1)) backoff capped at `maxMs`. The last error is
// rethrown.
export interface RetryOptions {
  tries?: number;
  baseMs?: number;
  maxMs?: number;
  backoff?: 'linear' | 'exponential';
  retriable?: (err: unknown) => boolean;
  /** Checked after each failure: true stops retrying (the owner closed). */
  stop?: () => boolean;
  onRetry?: (err: unknown, attempt: number) => void;
  signal?: AbortSignal;
  /** The wait between attempts (tests). */
  sleep?: (ms: number) => Promise<void>;
}

const wait = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The wait before attempt `attempt + 1`. */
export function backoffMs(attempt: number, o: Pick<RetryOptions, 'baseMs' | 'maxMs' | 'backoff'> = {}): number {
  const base = o.baseMs ?? 100, max = o.maxMs ?? 2_000;
  return Math.min(max, o.backoff === 'exponential' ? base * 2 ** (attempt - 1) : base * attempt);
}

export async function retry<T>(fn: (attempt: number) => Promise<T>, o: RetryOptions = {}): Promise<T> {
  const tries = o.tries ?? 5;
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (err) {
      if (attempt >= tries || o.signal?.aborted || o.stop?.() || (o.retriable && !o.retriable(err))) throw err;
      o.onRetry?.(err, attempt);
      await (o.sleep ?? wait)(backoffMs(attempt, o));
    }
  }
}
