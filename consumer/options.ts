/**
 * The consumer's tuning, in two layers: `ConsumerTuning` is what callers may set (every field optional, with its
 * default in TSDoc), `resolveTuning` validates it once and returns a complete, frozen object. A value that cannot
 * work fails at start-up with a ConfigError naming the option.
 */
import { ConfigError } from '../runtime/errors.ts';

export interface ConsumerTuning {
  /** Flush a partition's batch when it holds this many rows. ClickHouse wants 10k-100k rows per insert. @default 50000 */
  readonly maxBatchRows?: number;
  /** Flush when the batch's body (RowBinary or JSON lines) reaches this many bytes. @default 33554432 (32 MiB) */
  readonly maxBatchBytes?: number;
  /**
   * Flush when the oldest row of the batch has waited this long since it was produced (its Kafka timestamp), once the
   * partition is caught up. About one insert per second per partition at low traffic. The setting that trades
   * freshness for insert size: rows are queryable about this long (plus an insert) after log(). @default 1000
   */
  readonly maxBatchAgeMs?: number;
  /**
   * Partitions processed (and inserted) at the same time by one process. A caught-up partition waits for its batch's
   * age inside its turn, so fewer slots than owned partitions delays the others by up to an age (bench:latency at
   * 10,000 events/s on 6 partitions: p50 1.8 s with 4, 1.1 s with 6). @default 16
   */
  readonly partitionsConsumedConcurrently?: number;
  /** Kafka group session timeout. @default 30000 */
  readonly sessionTimeoutMs?: number;
  /** Kafka heartbeat interval; also heartbeats while an insert runs. @default 3000 */
  readonly heartbeatIntervalMs?: number;
  /** How long the group waits for members to rejoin; must exceed the longest insert. @default 60000 */
  readonly rebalanceTimeoutMs?: number;
  /** Bytes fetched per partition per request. @default 4194304 (4 MiB) */
  readonly maxBytesPerPartition?: number;
  /** First retry delay after a retriable failure (ClickHouse, registry, Kafka commit). @default 200 */
  readonly retryInitialMs?: number;
  /** Longest retry delay; delays grow exponentially with full jitter up to this. @default 10000 */
  readonly retryMaxMs?: number;
  /** After SIGTERM: finish or abandon the batch, commit what is durable, leave the group within this time. @default 30000 */
  readonly shutdownDeadlineMs?: number;
}

export type ResolvedTuning = Readonly<Required<ConsumerTuning>>;

export const DEFAULT_TUNING: ResolvedTuning = Object.freeze({
  maxBatchRows: 50_000,
  maxBatchBytes: 32 * 1024 * 1024,
  maxBatchAgeMs: 1000,
  partitionsConsumedConcurrently: 16,
  sessionTimeoutMs: 30_000,
  heartbeatIntervalMs: 3000,
  rebalanceTimeoutMs: 60_000,
  maxBytesPerPartition: 4 * 1024 * 1024,
  retryInitialMs: 200,
  retryMaxMs: 10_000,
  shutdownDeadlineMs: 30_000,
});

const KNOWN = new Set(Object.keys(DEFAULT_TUNING));

export function resolveTuning(tuning: ConsumerTuning = {}): ResolvedTuning {
  for (const key of Object.keys(tuning)) {
    if (!KNOWN.has(key)) throw new ConfigError(`unknown consumer option "${key}"`);
  }
  const out: Record<string, number> = {};
  for (const [key, fallback] of Object.entries(DEFAULT_TUNING)) {
    const value = (tuning as Record<string, unknown>)[key] ?? fallback;
    if (typeof value !== 'number' || !Number.isInteger(value) || value <= 0) {
      throw new ConfigError(`consumer option ${key} must be a positive integer, got ${String(value)}`);
    }
    out[key] = value;
  }
  const t = out as unknown as ResolvedTuning;
  if (t.heartbeatIntervalMs * 3 > t.sessionTimeoutMs) {
    throw new ConfigError(`heartbeatIntervalMs (${t.heartbeatIntervalMs}) must be at most a third of sessionTimeoutMs (${t.sessionTimeoutMs})`);
  }
  if (t.rebalanceTimeoutMs < t.sessionTimeoutMs) {
    throw new ConfigError(`rebalanceTimeoutMs (${t.rebalanceTimeoutMs}) must be at least sessionTimeoutMs (${t.sessionTimeoutMs})`);
  }
  if (t.retryMaxMs < t.retryInitialMs) {
    throw new ConfigError(`retryMaxMs (${t.retryMaxMs}) must be at least retryInitialMs (${t.retryInitialMs})`);
  }
  return Object.freeze(t);
}

/** The kafkajs fetch sizes for a per-partition fetch size: what the consumer asks for (benchmarks' baselines use the same). */
export function fetchSizes(maxBytesPerPartition: number): { maxBytesPerPartition: number; maxBytes: number } {
  return { maxBytesPerPartition, maxBytes: Math.max(maxBytesPerPartition * 4, 16 * 1024 * 1024) };
}
