/**
 * Prometheus metrics of one consumer process (prom-client, own registry), and the observer that feeds them from
 * the exactly-once core. Served by consumer/healthServer.ts on /metrics.
 *
 * Names follow Prometheus's conventions: `apilog_consumer_` prefix, base units as suffixes (`_seconds`, `_bytes`),
 * `_total` on counters. The dashboards and alert rules in deploy/ use them, and docs/operations.md lists them; both are
 * checked against this registry by test/unit/dashboards.test.ts.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { describeError } from '../runtime/errors.ts';
import type { Logger } from '../runtime/log.ts';
import type { DeadLetter } from './deadLetters.ts';
import type { IngestObserver } from './partitionIngest.ts';

export class ConsumerMetrics {
  readonly registry = new Registry();
  readonly rows = new Counter({ name: 'apilog_consumer_written_rows_total', help: 'Rows ClickHouse acknowledged', registers: [this.registry] });
  readonly bytes = new Counter({
    name: 'apilog_consumer_written_bytes_total',
    help: 'Bytes of insert bodies ClickHouse acknowledged, as sent: RowBinary (the default) or JSON lines',
    registers: [this.registry],
  });
  readonly batches = new Counter({
    name: 'apilog_consumer_batches_total',
    help: 'Batches ClickHouse acknowledged: one insert each, whatever retries it took',
    registers: [this.registry],
  });
  readonly insertSeconds = new Histogram({
    name: 'apilog_consumer_insert_duration_seconds',
    help: 'Time from sending a batch to ClickHouse to its acknowledgement, for the attempt that succeeded',
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });
  readonly lag = new Gauge({
    name: 'apilog_consumer_lag_records',
    help: "Records between a partition's end (high watermark) and the committed offset, as of this process's last fetch from it",
    labelNames: ['topic', 'partition'],
    registers: [this.registry],
  });
  readonly deadLetters = new Counter({
    name: 'apilog_consumer_dead_letters_total',
    help: 'Records sent to the dead-letter topic, by reason',
    labelNames: ['reason'],
    registers: [this.registry],
  });
  readonly retries = new Counter({
    name: 'apilog_consumer_retries_total',
    help: 'Retries after retriable failures, by operation',
    labelNames: ['operation'],
    registers: [this.registry],
  });
  readonly skippedStored = new Counter({
    name: 'apilog_consumer_skipped_stored_total',
    help: 'Records found already stored in ClickHouse on recovery and not inserted again',
    registers: [this.registry],
  });
  readonly commits = new Counter({ name: 'apilog_consumer_commits_total', help: 'Offset commits to Kafka', registers: [this.registry] });
  readonly rebalances = new Counter({ name: 'apilog_consumer_rebalances_total', help: 'Group joins (assignments received)', registers: [this.registry] });
  readonly assigned = new Gauge({ name: 'apilog_consumer_assigned_partitions', help: 'Partitions assigned to this process', registers: [this.registry] });

  constructor(options: { processMetrics?: boolean } = {}) {
    if (options.processMetrics ?? true) collectDefaultMetrics({ register: this.registry });
  }

  /** The observer the exactly-once core reports to; retries are also logged (without secrets: messages only). */
  observer(logger: Logger): IngestObserver {
    return {
      inserted: (rows, bytes, seconds) => {
        this.rows.inc(rows);
        this.bytes.inc(bytes);
        this.batches.inc();
        if (seconds > 0) this.insertSeconds.observe(seconds);
      },
      retried: (operation, error, attempt, delayMs) => {
        this.retries.inc({ operation });
        logger.warn({ operation, attempt, delayMs, error: describeError(error) }, 'retrying');
      },
      deadLettered: (letters: readonly DeadLetter[]) => {
        for (const l of letters) this.deadLetters.inc({ reason: l.error.reason });
        logger.warn({ count: letters.length, reason: letters[0]?.error.reason, example: letters[0]?.error.message }, 'records dead-lettered');
      },
      skippedStored: (count) => {
        this.skippedStored.inc(count);
        logger.info({ count }, 'records already stored in ClickHouse: skipped');
      },
      committed: () => this.commits.inc(),
    };
  }
}
