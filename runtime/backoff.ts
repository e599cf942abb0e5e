/**
 * Retrying what may succeed later, for every part of apilog (the consumer, the SDK's sender, the CLI's start-up):
 * exponential backoff with jitter (full by default: delay uniform in [0, min(max, initial·2^n)]), only for errors
 * whose `retriable` flag says so. A programming error or bad input is thrown at once.
 */
import { ApilogError } from './errors.ts';

export interface BackoffPolicy {
  readonly initialMs: number;
  readonly maxMs: number;
  /**
   * `full`: uniform in [0, ceiling]; `equal`: uniform in [ceiling/2, ceiling], for a loop that must not come back at
   * once (the SDK's sender against a broker that is down). @default 'full'
   */
  readonly jitter?: 'full' | 'equal';
  /** Uniform [0,1) source; injectable for tests. @default Math.random */
  readonly random?: () => number;
  /** Waits; injectable for tests. @default setTimeout */
  readonly sleep?: (ms: number) => Promise<void>;
}

export interface RetryHooks {
  /** Called before each wait with the error and the attempt number (1 = first retry). */
  readonly onRetry?: (error: unknown, attempt: number, delayMs: number) => void;
  /** Called between attempts; throw from it to give up (e.g. the partition was lost, or shutdown). */
  readonly between?: () => Promise<void> | void;
}

const defaultSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Waits `ms` with the policy's `sleep` (setTimeout by default). */
export function wait(policy: BackoffPolicy, ms: number): Promise<void> {
  return (policy.sleep ?? defaultSleep)(ms);
}

/** True for errors worth retrying: our own flag, or kafkajs's (`retriable` on KafkaJSError). */
export function isRetriable(error: unknown): boolean {
  if (error instanceof ApilogError) return error.retriable;
  return typeof error === 'object' && error !== null && (error as { retriable?: unknown }).retriable === true;
}

export function backoffDelay(policy: BackoffPolicy, attempt: number): number {
  const ceiling = Math.min(policy.maxMs, policy.initialMs * 2 ** Math.min(attempt - 1, 30));
  const r = (policy.random ?? Math.random)();
  return Math.floor(policy.jitter === 'equal' ? ceiling * (0.5 + r / 2) : r * ceiling);
}

/** Runs `task` until it succeeds or throws a non-retriable error. Never gives up on retriable ones by itself. */
export async function retrying<T>(policy: BackoffPolicy, task: (attempt: number) => Promise<T>, hooks: RetryHooks = {}): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    if (attempt > 0 && hooks.between) await hooks.between();
    try {
      return await task(attempt);
    } catch (error) {
      if (!isRetriable(error)) throw error;
      const delay = backoffDelay(policy, attempt + 1);
      hooks.onRetry?.(error, attempt + 1, delay);
      await wait(policy, delay);
    }
  }
}
