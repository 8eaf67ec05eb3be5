// The agent's last check before batching (DESIGN §3, §8): every event the decoder made is held to the same per-event
// rules the readers apply (services/core/validate.ts). One event the readers reject would make its whole EventBatch
// invalid and the correlator would dead-letter the batch with the good events in it; so an event that fails is not
// sent, it is counted as lost (the caller adds the count to the batch's `dropped`) with its reason. Nothing is
// repaired: a field the kernel did not give is never filled in with a guess.
import type { Event } from '../../services/core/model.js';
import { FieldError, validateEvent } from '../../services/core/validate.js';

export class EventScreen {
  /** Events refused so far. */
  rejected = 0;
  /** The reason of the first one refused (for the log; later ones only count). */
  firstReason: string | undefined;

  /** The events of `events` the readers accept, in order; the others are counted. Throws only what is not a
   * FieldError (a bug, not bad input). */
  keep(events: Event[]): { events: Event[]; rejected: number } {
    let out: Event[] | undefined;
    for (let i = 0; i < events.length; i++) {
      const ev = events[i]!;
      try {
        validateEvent(ev, 'event');
        out?.push(ev);
      } catch (e) {
        if (!(e instanceof FieldError)) throw e;
        this.rejected++;
        this.firstReason ??= e.message;
        out ??= events.slice(0, i);
      }
    }
    return out ? { events: out, rejected: events.length - out.length } : { events, rejected: 0 };
  }
}
