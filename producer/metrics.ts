/**
 * The SDK's own numbers: plain counters bumped on the hot path (no prom-client call per event), readable with
 * `snapshot()` and exported to Prometheus by `registerPrometheus`, whose collectors read the counters at
 * scrape time. Send latency (one observation per batch: from the send call to the acknowledgement, retries
 * included) goes into a fixed-bucket histogram.
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { REJECT_REASONS, type RejectReason } from './validate.ts';

export type DropReason = 'queue_full' | 'wait_timeout' | 'spool_full' | 'encode_failed' | 'broker_rejected' | 'close_timeout';
export const DROP_REASONS: readonly DropReason[] = ['queue_full', 'wait_timeout', 'spool_full', 'encode_failed', 'broker_rejected', 'close_timeout'];

/** Upper bounds of the send-latency buckets, seconds. */
export const SEND_LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

export interface MetricsSnapshot {
  /** Events accepted by log() (valid and queued). */
  readonly queued: number;
  /** Events acknowledged by Kafka. */
  readonly sent: number;
  /** Events accepted but then dropped, by reason, and their sum. */
  readonly dropped: number;
  readonly droppedBy: Readonly<Record<DropReason, number>>;
  /** Events refused by log() as invalid, by reason, and their sum. */
  readonly rejected: number;
  readonly rejectedBy: Readonly<Record<RejectReason, number>>;
  /** Send attempts that failed and were tried again. */
  readonly retries: number;
  /** Batches acknowledged. */
  readonly batches: number;
  /** Events written to the on-disk spool, and events sent from it. */
  readonly spooled: number;
  /** Events sent from a spool left by an earlier process. */
  readonly replayed: number;
  /** Now: events and estimated bytes in memory, bytes waiting in the spool, callers waiting for room. */
  readonly queueDepth: number;
  readonly queueBytes: number;
  readonly spoolBytes: number;
  readonly waiting: number;
  /** Send latency per batch, seconds: count, sum, and counts per bucket of SEND_LATENCY_BUCKETS (not cumulative). */
  readonly sendLatency: { readonly count: number; readonly sum: number; readonly buckets: readonly number[] };
}

const zeros = <K extends string>(keys: readonly K[]) => Object.fromEntries(keys.map((k) => [k, 0])) as Record<K, number>;

export class ProducerMetrics {
  queued = 0;
  sent = 0;
  retries = 0;
  batches = 0;
  spooled = 0;
  replayed = 0;
  readonly droppedBy: Record<DropReason, number> = zeros(DROP_REASONS);
  readonly rejectedBy: Record<RejectReason, number> = zeros(REJECT_REASONS);
  private latencyCount = 0;
  private latencySum = 0;
  private readonly latencyBuckets = new Array<number>(SEND_LATENCY_BUCKETS.length + 1).fill(0);
  private readonly histograms: Histogram[] = [];

  constructor(private readonly gauges: () => { queueDepth: number; queueBytes: number; spoolBytes: number; waiting: number }) {}

  observeSend(seconds: number): void {
    this.latencyCount++;
    this.latencySum += seconds;
    let i = 0;
    while (i < SEND_LATENCY_BUCKETS.length && seconds > SEND_LATENCY_BUCKETS[i]!) i++;
    this.latencyBuckets[i]!++;
    for (const h of this.histograms) h.observe(seconds);
  }

  get dropped(): number {
    let n = 0;
    for (const r of DROP_REASONS) n += this.droppedBy[r];
    return n;
  }

  get rejected(): number {
    let n = 0;
    for (const r of REJECT_REASONS) n += this.rejectedBy[r];
    return n;
  }

  snapshot(): MetricsSnapshot {
    return {
      queued: this.queued,
      sent: this.sent,
      dropped: this.dropped,
      droppedBy: { ...this.droppedBy },
      rejected: this.rejected,
      rejectedBy: { ...this.rejectedBy },
      retries: this.retries,
      batches: this.batches,
      spooled: this.spooled,
      replayed: this.replayed,
      ...this.gauges(),
      sendLatency: { count: this.latencyCount, sum: this.latencySum, buckets: [...this.latencyBuckets] },
    };
  }

  /**
   * Registers the SDK's metrics with a prom-client registry (names start with `prefix`, default `apilog_producer_`).
   * Counters and gauges are read at scrape time; the send-latency histogram is observed per batch from now on.
   */
  registerPrometheus(registry: Registry, prefix = 'apilog_producer_'): void {
    const counter = (name: string, help: string, read: () => number) =>
      new Counter({
        name: prefix + name,
        help,
        registers: [registry],
        collect() {
          this.reset();
          this.inc(read());
        },
      });
    counter('queued_total', 'Events accepted by log() and queued', () => this.queued);
    counter('sent_total', 'Events acknowledged by Kafka', () => this.sent);
    counter('retries_total', 'Send attempts that failed and were retried', () => this.retries);
    counter('batches_total', 'Batches acknowledged by Kafka', () => this.batches);
    counter('spooled_total', 'Events written to the on-disk spool', () => this.spooled);
    const labelled = <R extends string>(name: string, help: string, reasons: readonly R[], counts: Record<R, number>) =>
      new Counter({
        name: prefix + name,
        help,
        labelNames: ['reason'],
        registers: [registry],
        collect() {
          this.reset();
          for (const r of reasons) this.inc({ reason: r }, counts[r]);
        },
      });
    labelled('dropped_total', 'Events accepted but dropped, by reason', DROP_REASONS, this.droppedBy);
    labelled('rejected_total', 'Events refused by log() as invalid, by reason', REJECT_REASONS, this.rejectedBy);
    const gauge = (name: string, help: string, read: () => number) =>
      new Gauge({
        name: prefix + name,
        help,
        registers: [registry],
        collect() {
          this.set(read());
        },
      });
    gauge('queue_events', 'Events waiting in memory', () => this.gauges().queueDepth);
    gauge('queue_bytes', 'Estimated bytes waiting in memory', () => this.gauges().queueBytes);
    gauge('spool_bytes', 'Bytes waiting in the on-disk spool', () => this.gauges().spoolBytes);
    gauge('waiting_callers', 'log() calls waiting for room (policy wait)', () => this.gauges().waiting);
    this.histograms.push(
      new Histogram({
        name: `${prefix}send_latency_seconds`,
        help: 'Time from sending a batch to its acknowledgement, retries included',
        buckets: SEND_LATENCY_BUCKETS,
        registers: [registry],
      }),
    );
  }
}
