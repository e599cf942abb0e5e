/**
 * kafkajs 2.2.4 (its latest release) keeps every broker connection's request queue polling itself: after each
 * check of its pending requests it schedules the next one, and with nothing pending and no throttling the delay
 * it computes is negative, so the timer fires again at once (about a thousand times a second per connection,
 * for as long as the connection is open; kafkajs issues #1556 and #1704, the fix in pull request #1667 not
 * merged). Measured here: a connected, idle kafkajs producer spends ~5 % of a core doing nothing; at a service's
 * pace of a few thousand events per second that loop was a large share of what each event cost the service.
 *
 * `stopIdleRequestQueueLoop()` replaces that one method of kafkajs's RequestQueue so that it schedules a check
 * only when a request is waiting in the queue: at the end of the throttle if the broker throttles this client,
 * else after kafkajs's own 10 ms interval. Nothing else changes: a request that cannot be sent at once (in-flight
 * limit, throttling) is still queued and checked again on that timer and whenever a response arrives, as before.
 * kafkajs is one copy per process, so this applies to every kafkajs client of the process, like the codecs
 * (kafkaCodecs.ts). It is applied only to the method as kafkajs 2.2.4 ships it (checked by version and by the
 * method's source); any other kafkajs is left alone. APILOG_KAFKAJS_IDLE_LOOP=keep leaves it alone too.
 */
import { createRequire } from 'node:module';
import { isKafkajs224 } from './kafkajsModules.ts';

const require = createRequire(import.meta.url);

/** kafkajs's CHECK_PENDING_REQUESTS_INTERVAL (not exported). */
const CHECK_PENDING_MS = 10;

interface RequestQueue {
  pending: unknown[];
  throttledUntil: number;
  throttleCheckTimeoutId: NodeJS.Timeout | null;
  checkPendingRequests(): void;
  scheduleCheckPendingRequests(): void;
}

export type IdleLoopState = 'stopped' | 'kept: other kafkajs' | 'kept: by APILOG_KAFKAJS_IDLE_LOOP';
let state: IdleLoopState | undefined;

/** kafkajs's RequestQueue class (the same module instance every kafkajs client of this process uses). */
export function requestQueueClass(): { prototype: RequestQueue } {
  return require('kafkajs/src/network/requestQueue/index.js') as { prototype: RequestQueue };
}

/** Stops the idle polling of kafkajs 2.2.4's request queues (see above); idempotent. Returns what it did. */
export function stopIdleRequestQueueLoop(): IdleLoopState {
  if (state !== undefined) return state;
  if (process.env['APILOG_KAFKAJS_IDLE_LOOP'] === 'keep') return (state = 'kept: by APILOG_KAFKAJS_IDLE_LOOP');
  if (!isKafkajs224(() => String(requestQueueClass().prototype.scheduleCheckPendingRequests), ['this.throttledUntil - Date.now()', 'this.pending.length > 0'])) {
    return (state = 'kept: other kafkajs');
  }
  const proto = requestQueueClass().prototype;
  proto.scheduleCheckPendingRequests = function scheduleCheckPendingRequests(this: RequestQueue): void {
    // Nothing waits: a new request is sent at once or queued (which schedules a check), and a response checks too.
    if (this.throttleCheckTimeoutId !== null || this.pending.length === 0) return;
    const untilUnthrottled = this.throttledUntil - Date.now();
    this.throttleCheckTimeoutId = setTimeout(
      () => {
        this.throttleCheckTimeoutId = null;
        this.checkPendingRequests();
      },
      untilUnthrottled > 0 ? untilUnthrottled : CHECK_PENDING_MS,
    );
  };
  return (state = 'stopped');
}
