// One retry loop for the adapters (Kafka admin calls, store inserts, sinks): linear backoff from `baseMs` capped at
// `maxMs`, `tries` attempts in all (Infinity: until it succeeds, or `signal` aborts), only for errors `retriable`
// accepts. The last error is rethrown.
export interface RetryOptions {
  tries?: number;
  baseMs?: number;
  maxMs?: number;
  retriable?: (err: unknown) => boolean;
  onRetry?: (err: unknown, attempt: number) => void;
  signal?: AbortSignal;
}

export async function retry<T>(fn: () => Promise<T>, o: RetryOptions = {}): Promise<T> {
  const tries = o.tries ?? 5, base = o.baseMs ?? 100, max = o.maxMs ?? 2_000;
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (attempt >= tries || o.signal?.aborted || (o.retriable && !o.retriable(err))) throw err;
      o.onRetry?.(err, attempt);
      await new Promise((r) => setTimeout(r, Math.min(max, base * attempt)));
    }
  }
}
