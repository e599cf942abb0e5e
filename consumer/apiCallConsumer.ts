/**
 * The consumer group: fetch → decode → per-partition batch → intent → insert into ClickHouse → commit, exactly once.
 *
 * kafkajs delivers batches per partition (eachBatch). Each partition has a PartitionIngest (partitionIngest.ts holds
 * the exactly-once contract) for the current group generation; a new assignment drops them all, and each partition
 * recovers on its first batch from the ledger its committed offset carries (ledger.ts, read with an admin client:
 * kafkajs's consumer does not expose commit metadata) and from ClickHouse. Every insert and commit happens inside
 * eachBatch, which kafkajs finishes before it rejoins the group; the lease (below) stops attempts once the group is
 * rebalancing, and what an attempt may still do after that (a request waiting at the server) is made harmless by
 * deduplication tokens or fenced entries (clickhouseRows.ts). A batch younger than `maxBatchAgeMs` on a caught-up
 * partition is held inside eachBatch (heartbeating) until it is due: flushing on a timer outside eachBatch could race
 * a rejoin.
 *
 * Failure behaviour: undecodable records go to the dead-letter topic; ClickHouse, registry or commit failures are
 * retried with backoff and jitter while fetching stops (nothing is committed meanwhile), for at most the rebalance
 * timeout per eachBatch; a partition lost to a rebalance, or retried that long, is abandoned and rewound; any other
 * error is fatal (`onFatal`), and a restart recovers exactly.
 */
import type { Admin, Consumer, ConsumerRunConfig, EachBatchPayload, Kafka } from 'kafkajs';
import { ApilogError, ConfigError, DecodeError, describeError } from '../runtime/errors.ts';
import type { Logger } from '../runtime/log.ts';
import type { SchemaRegistryClient } from '../schemas/registry.ts';
import { backoffDelay, retrying, wait, type BackoffPolicy } from '../runtime/backoff.ts';
import { ColumnsChangedError } from '../clickhouse/errors.ts';
import { ClickHouseReplicas } from '../clickhouse/replicas.ts';
import { ClickHouseRows } from './clickhouseRows.ts';
import { DeadLetterWriter } from './deadLetters.ts';
import { prefetchSchemas, schemaIds } from './decoder.ts';
import { ConsumerMetrics } from './metrics.ts';
import { fetchSizes, resolveTuning, type ConsumerTuning, type ResolvedTuning } from './options.ts';
import { PartitionIngest, PartitionLostError, ReformConflictError, type CommittedOffset, type CrashPoint, type IngestObserver, type PartitionLease } from './partitionIngest.ts';
import { isLegacyServer } from '../clickhouse/apiCallsTable.ts';
import type { RowFormat, Sink } from '../clickhouse/sink.ts';
import { TableWriter } from './tableWriter.ts';

export interface ApiCallConsumerOptions {
  readonly kafka: Kafka;
  readonly registry: SchemaRegistryClient;
  readonly sink: Sink;
  readonly topic: string;
  readonly groupId: string;
  readonly table: string;
  readonly deadLetterTopic: string;
  readonly logger: Logger;
  /** Where a group with no committed offset starts. @default true */
  readonly fromBeginning?: boolean;
  /** Batch sizes, timeouts, retries (see options.ts for defaults). */
  readonly tuning?: ConsumerTuning;
  /** Metrics to update. @default a new ConsumerMetrics without process metrics */
  readonly metrics?: ConsumerMetrics;
  /**
   * Row format sent to ClickHouse. @default 'RowBinary' (encoded from the Avro bytes, see rowBinary.ts) when the sink
   * takes it, with JSON lines for a table whose columns RowBinary cannot fill: 'JSONCompactEachRow' on ClickHouse 20+
   * and the embedded engine (parsed ~35% faster), 'JSONEachRow' on older servers (18.16 has no JSONCompactEachRow)
   */
  readonly rowFormat?: RowFormat;
  /** Crash-point hook for crash tests (see IngestDeps.crashPoint). */
  readonly crashPoint?: (point: CrashPoint) => void;
  /** Called once when the consumer stops for good on an error that retrying cannot fix. */
  readonly onFatal?: (error: Error) => void;
}

export interface ConsumerStats {
  rows: number;
  batches: number;
  deadLetters: number;
  skippedStored: number;
}

const LOST_TYPES = new Set(['UNKNOWN_MEMBER_ID', 'ILLEGAL_GENERATION', 'FENCED_INSTANCE_ID', 'REBALANCE_IN_PROGRESS']);
const kafkaErrorType = (error: unknown) => (typeof error === 'object' && error !== null ? (error as { type?: unknown }).type : undefined);
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * kafkajs errors that end its consumer without a restart although a broker coming back cures them: no group
 * coordinator found while the only broker restarts (kafkajs marks KafkaJSGroupCoordinatorNotFound non-retriable),
 * or brokers unreachable while metadata is refreshed. Searched along the error's causes.
 */
const KAFKA_OUTAGES = new Set([
  'KafkaJSGroupCoordinatorNotFound', 'KafkaJSConnectionError', 'KafkaJSConnectionClosedError', 'KafkaJSRequestTimeoutError',
  'KafkaJSBrokerNotFound', 'KafkaJSMetadataNotLoaded', 'KafkaJSTopicMetadataNotLoaded', 'KafkaJSStaleTopicMetadataAssignment',
]);

/** A Kafka failure of `step` that is worth waiting out, as a retriable error. */
const kafkaRetriable = (step: string, error: unknown) => new ApilogError(`Kafka (${step}): ${describeError(error)}`, { retriable: true, cause: error });

/** A Kafka outage as a retriable error (retried while the lease holds); anything else as it was. */
function outageRetriable(step: string, error: unknown): unknown {
  return isKafkaOutage(error) ? kafkaRetriable(step, error) : error;
}

export function isKafkaOutage(error: unknown): boolean {
  for (let e: unknown = error, depth = 0; e instanceof Error && depth < 8; e = (e as { cause?: unknown }).cause, depth++) {
    if (e instanceof ApilogError) return false; // ours: it says itself whether it is retriable
    if (KAFKA_OUTAGES.has(e.name)) return true;
  }
  return false;
}

export class ApiCallConsumer {
  readonly stats: ConsumerStats = { rows: 0, batches: 0, deadLetters: 0, skippedStored: 0 };
  readonly metrics: ConsumerMetrics;
  readonly tuning: ResolvedTuning;
  private readonly consumer: Consumer;
  /** Reads the committed offsets' metadata (the ledger), which kafkajs's consumer does not expose. */
  private readonly admin: Admin;
  private readonly deadLetters: DeadLetterWriter;
  /** Intents whose batch could not be formed again (see PartitionIngest.cutForLayout). */
  private readonly unreformable = new Set<string>();
  private readonly rows: ClickHouseRows;
  private readonly backoff: BackoffPolicy;
  private readonly observer: IngestObserver;
  private table: TableWriter | undefined;
  /** Group generation as seen by this process: bumped on every assignment. */
  private generation = 0;
  private ingests = new Map<number, PartitionIngest>();
  private lastHeartbeat = 0;
  private joined = false;
  private draining = false;
  private failure: Error | undefined;
  private lastFailureAt = 0;
  /** Joins again after kafkajs gave up on a Kafka outage, since the last successful join. */
  private rejoins = 0;

  constructor(private readonly options: ApiCallConsumerOptions) {
    this.tuning = resolveTuning(options.tuning);
    const t = this.tuning;
    this.metrics = options.metrics ?? new ConsumerMetrics({ processMetrics: false });
    this.rows = new ClickHouseRows(options.sink, options.table);
    if (options.sink instanceof ClickHouseReplicas) {
      options.sink.onSwitch = (change) => options.logger.warn(change, 'ClickHouse: requests move to another replica');
    }
    this.backoff = { initialMs: t.retryInitialMs, maxMs: t.retryMaxMs };
    this.deadLetters = new DeadLetterWriter(options.kafka, options.deadLetterTopic);
    this.admin = options.kafka.admin();
    const base = this.metrics.observer(options.logger);
    // Stats for callers and tests, metrics for operators, from the same events.
    this.observer = {
      ...base,
      inserted: (rows, bytes, seconds) => {
        this.stats.rows += rows;
        this.stats.batches += 1;
        base.inserted(rows, bytes, seconds);
      },
      deadLettered: (letters) => {
        this.stats.deadLetters += letters.length;
        base.deadLettered(letters);
      },
      skippedStored: (count) => {
        this.stats.skippedStored += count;
        base.skippedStored(count);
      },
      retried: (operation, error, attempt, delayMs) => {
        this.lastFailureAt = Date.now();
        base.retried(operation, error, attempt, delayMs);
      },
    };
    this.consumer = options.kafka.consumer({
      groupId: options.groupId,
      allowAutoTopicCreation: false,
      sessionTimeout: t.sessionTimeoutMs,
      rebalanceTimeout: t.rebalanceTimeoutMs,
      heartbeatInterval: t.heartbeatIntervalMs,
      ...fetchSizes(t.maxBytesPerPartition),
      retry: { restartOnFailure: async (error) => !(error instanceof ConfigError) },
    });
    const { GROUP_JOIN, HEARTBEAT, CRASH } = this.consumer.events;
    this.consumer.on(GROUP_JOIN, (event) => {
      // A new generation: buffered rows of the old one are dropped (kafkajs resumes at the committed offsets and
      // each partition recovers from ClickHouse again). Runs before the first fetch of the new generation.
      this.generation++;
      this.rejoins = 0;
      this.ingests = new Map();
      this.joined = true;
      this.lastHeartbeat = Date.now();
      const partitions = event.payload.memberAssignment[options.topic] ?? [];
      this.metrics.rebalances.inc();
      this.metrics.assigned.set(partitions.length);
      // Lag is reported for the partitions this member owns now: a partition another member took stops being ours.
      this.metrics.lag.reset();
      options.logger.info({ generation: this.generation, partitions, memberId: event.payload.memberId }, 'partitions assigned');
    });
    this.consumer.on(HEARTBEAT, () => {
      this.lastHeartbeat = Date.now();
    });
    this.consumer.on(CRASH, (event) => {
      this.joined = false;
      const error = event.payload.error;
      if (event.payload.restart) {
        options.logger.warn({ error: describeError(error) }, 'consumer crashed; kafkajs restarts it');
      } else if (!this.draining && isKafkaOutage(error)) {
        // kafkajs gives up for good on a few errors a broker restart causes (no coordinator found while the only
        // broker is down): a daemon joins again when Kafka answers. Nothing was committed meanwhile.
        options.logger.warn({ error: describeError(error), attempt: this.rejoins + 1 }, 'Kafka unavailable: the consumer joins the group again when it answers');
        void this.rejoin();
      } else {
        options.logger.error({ error: describeError(error) }, 'consumer crashed');
        this.fail(error);
      }
    });
  }

  /** Healthy unless failed for good. */
  get healthy(): boolean {
    return this.failure === undefined;
  }

  /** Ready when joined, healthy, and no retriable failure in the last few seconds. */
  get ready(): boolean {
    return this.joined && this.failure === undefined && Date.now() - this.lastFailureAt > 5000;
  }

  async start(): Promise<void> {
    // ClickHouse restarting or frozen for a moment while a consumer starts (a supervisor restarted it during an
    // outage) is waited for, as the preflight did; a table without the columns exactly-once needs is not.
    await retrying(this.backoff, () => this.startWriting(), {
      onRetry: (error, attempt, delayMs) => this.options.logger.warn({ attempt, delayMs, error: describeError(error) }, 'waiting for ClickHouse'),
    });
    // A broker that is down for a moment (a restart) is waited for, as the preflight did: a daemon keeps trying.
    await this.untilKafkaAnswers('connect', () => this.admin.connect());
    await this.untilKafkaAnswers('connect', () => this.consumer.connect());
    await this.untilKafkaAnswers('subscribe', () => this.consumer.subscribe({ topics: [this.options.topic], fromBeginning: this.options.fromBeginning ?? true }));
    await this.consumer.run(this.runConfig());
  }

  private runConfig(): ConsumerRunConfig {
    return {
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: this.tuning.partitionsConsumedConcurrently,
      eachBatch: (payload) => this.onBatch(payload),
    };
  }

  /** After kafkajs stopped the consumer on a Kafka outage: waits (backoff), connects and runs it again. */
  private async rejoin(): Promise<void> {
    try {
      await wait(this.backoff, backoffDelay(this.backoff, ++this.rejoins));
      if (this.draining) return;
      await this.untilKafkaAnswers('connect', () => this.consumer.connect());
      if (this.draining) return;
      // A failure to join from here on is another crash event: handled as this one was.
      await this.consumer.run(this.runConfig());
    } catch (error) {
      this.fail(error instanceof Error ? error : new Error(String(error)));
    }
  }

  /** Reads what the table takes and how it deduplicates: the row writer and the inserts' settings follow from it. */
  private async startWriting(): Promise<void> {
    const { sink, table, logger } = this.options;
    const jsonFormat = (await isLegacyServer(sink)) ? 'JSONEachRow' : 'JSONCompactEachRow';
    const requested = this.options.rowFormat ?? (sink.takesRowBinary ? 'RowBinary' : jsonFormat);
    if (requested === 'RowBinary' && !sink.takesRowBinary) throw new ConfigError(`${sink.kind} ClickHouse at ${sink.address} does not take RowBinary inserts`);
    this.table = new TableWriter({
      describe: () => sink.describe(table),
      rowBinary: requested === 'RowBinary',
      format: requested === 'RowBinary' ? jsonFormat : requested,
      schemas: this.options.registry,
      onChange: (columns) => logger.info({ table, columns: columns.map((c) => c.name) }, 'table columns changed: rows written with the new columns'),
      onJsonFallback: (schemaId, reason) => logger.warn({ table, schemaId, reason }, `rows of this writer schema go in as ${jsonFormat}, not RowBinary`),
    });
    const columns = await this.table.start();
    logger.info({ table, rowFormat: requested }, `rows go to ClickHouse as ${requested}`);
    const names = new Set(columns.map((c) => c.name));
    for (const required of ['_topic', '_partition', '_offset']) {
      if (!names.has(required)) {
        throw new ConfigError(`table ${this.options.table} has no ${required} column: exactly-once ingestion stores each row's Kafka coordinates`);
      }
    }
    await this.rows.start();
    const dedup = this.rows.deduplication;
    logger.info(
      { table, deduplication: dedup, entries: this.rows.fences },
      dedup === 'token'
        ? 'inserts carry deduplication tokens: a batch sent again lands once in the table and its rollups'
        : dedup === 'content'
          ? 'the replicated table drops a block it already has: a batch is only ever sent again whole and identical'
          : 'the table does not deduplicate inserts: a batch whose insert failed is completed from its stored offsets',
    );
  }

  /** Runs a Kafka step until it succeeds; authentication and authorization failures are not waited on. */
  private untilKafkaAnswers<T>(step: string, task: () => Promise<T>): Promise<T> {
    const attempt = async (): Promise<T> => {
      try {
        return await task();
      } catch (error) {
        const name = error instanceof Error ? error.name : '';
        if (/SASL|Authentication|Authorization/i.test(name) || error instanceof ConfigError) throw error;
        throw kafkaRetriable(step, error);
      }
    };
    return retrying(this.backoff, attempt, {
      onRetry: (error, n, delayMs) => this.options.logger.warn({ step, attempt: n, delayMs, error: describeError(error) }, 'waiting for Kafka'),
    });
  }

  private fail(error: Error): void {
    if (this.failure !== undefined) return;
    this.failure = error;
    this.options.onFatal?.(error);
  }

  private lease(payload: EachBatchPayload, generation: number): PartitionLease & { readonly rebalancing: boolean } {
    const { sessionTimeoutMs, rebalanceTimeoutMs } = this.tuning;
    const { topic, partition } = payload.batch;
    const where = `${topic}:${partition}`;
    let lost = false;
    let rebalancing = false;
    /** When the first retried failure of this eachBatch happened: retries stop a rebalance timeout later. */
    let failingSince: number | undefined;
    const heartbeat = async (): Promise<void> => {
      try {
        await payload.heartbeat();
      } catch (error) {
        const type = kafkaErrorType(error);
        if (type === 'REBALANCE_IN_PROGRESS') {
          // The coordinator waits for this member to rejoin; kafkajs rejoins after eachBatch returns. No new attempt
          // starts (check() throws): the batch is abandoned and eachBatch returns at once. Not a successful heartbeat.
          rebalancing = true;
        } else if (LOST_TYPES.has(String(type))) {
          lost = true;
        } else {
          this.options.logger.warn({ partition: where, error: describeError(error) }, 'heartbeat failed');
        }
      }
    };
    return {
      get rebalancing() {
        return rebalancing;
      },
      check: () => {
        if (lost || generation !== this.generation || payload.isStale()) throw new PartitionLostError(where);
        if (rebalancing) throw new PartitionLostError(`${where} (the group is rebalancing)`);
        // No successful heartbeat for half a session: the coordinator may be about to expire this member, and an
        // insert started now could land after another member took the partition over.
        if (Date.now() - this.lastHeartbeat > sessionTimeoutMs / 2) throw new PartitionLostError(`${where} (no heartbeat for ${Date.now() - this.lastHeartbeat} ms)`);
        // eachBatch must return within the rebalance timeout, or the group goes on without this member.
        if (failingSince !== undefined && Date.now() - failingSince > rebalanceTimeoutMs) {
          throw new PartitionLostError(`${where} (retried for ${Date.now() - failingSince} ms, longer than the rebalance timeout)`);
        }
      },
      failed: () => {
        failingSince ??= Date.now();
      },
      heartbeat,
      commit: async (offset, metadata) => {
        try {
          await payload.commitOffsetsIfNecessary({
            topics: [{ topic, partitions: [{ partition, offset: String(offset), metadata } as { partition: number; offset: string }] }],
          });
        } catch (error) {
          if (LOST_TYPES.has(String(kafkaErrorType(error)))) throw new PartitionLostError(`${where} (commit refused: ${describeError(error)})`);
          throw outageRetriable('commit', error);
        }
      },
      committed: async (): Promise<CommittedOffset> => {
        try {
          const [found] = await this.admin.fetchOffsets({ groupId: this.options.groupId, topics: [topic] });
          const p = found?.partitions.find((x) => x.partition === partition);
          return { offset: p === undefined ? -1 : Number(p.offset), metadata: p?.metadata ?? null };
        } catch (error) {
          throw outageRetriable('committed offsets', error);
        }
      },
    };
  }

  private async onBatch(payload: EachBatchPayload): Promise<void> {
    const { batch } = payload;
    if (batch.isEmpty()) return;
    const generation = this.generation;
    const { topic, partition } = batch;
    const { logger, registry } = this.options;
    const t = this.tuning;
    const lease = this.lease(payload, generation);
    let ingest = this.ingests.get(partition);
    if (ingest === undefined) {
      ingest = new PartitionIngest(topic, partition, {
        rows: this.rows, deadLetters: this.deadLetters, backoff: this.backoff, observer: this.observer, unreformable: this.unreformable,
        ...(this.options.crashPoint ? { crashPoint: this.options.crashPoint } : {}),
      });
      this.ingests.set(partition, ingest);
    }
    try {
      if (!ingest.recovered) {
        const from = Number(batch.firstOffset());
        const recovery = await ingest.recover(from, lease);
        logger.info({ partition: `${topic}:${partition}`, from, ...recovery, generation }, 'partition recovered from ClickHouse');
      }
      await ingest.prepare(Number(batch.firstOffset()), Number(batch.lastOffset()), lease);
      const table = this.table!;
      const ids = schemaIds(batch.messages);
      await ingest.retry('schemas', lease, () => prefetchSchemas(ids, registry));
      // A writer schema id not seen before: read the table's columns again (a migration may have added its fields).
      await ingest.retry('schemas', lease, () => table.prepare(ids));
      const messages = batch.messages;
      // An index loop: this async function's loop does not get the iterator's result objects optimized away.
      for (let i = 0; i < messages.length; i++) {
        const message = messages[i]!;
        const offset = Number(message.offset);
        if (ingest.reformComplete) {
          // A batch formed again after a recovery is complete: it is sent as it was, nothing after it joins it.
          if (ingest.flushing) await ingest.settle();
          ingest.startFlush(lease);
        }
        if (!ingest.admit(offset)) continue;
        let error: DecodeError;
        try {
          const encoder = table.encoderFor(message.value);
          if (ingest.pending.rows > 0 && ingest.pending.layout !== encoder.layout) {
            // Another column list (a writer schema that fills other columns): its rows go in their own insert.
            if (ingest.flushing) await ingest.settle();
            ingest.cutForLayout(lease);
          }
          ingest.addEncoded(offset, encoder, message.value!, message.offset, message.timestamp);
          if (ingest.canCut && (ingest.pending.rows >= t.maxBatchRows || ingest.pending.bytes >= t.maxBatchBytes)) {
            // The batch is full: insert it while the rest of this fetch is encoded; at most one insert in flight.
            if (ingest.flushing) await ingest.settle();
            ingest.startFlush(lease);
          }
          continue;
        } catch (thrown) {
          if (!(thrown instanceof DecodeError)) throw thrown;
          error = thrown;
        }
        ingest.addDeadLetter(offset, { topic, partition, offset: message.offset, key: message.key, value: message.value, error });
      }
      // No insert outlives eachBatch: kafkajs rejoins the group only after it returns.
      await ingest.settle();
      // Taken into the batch: kafkajs may fetch past it. Not a commit; commits follow durable inserts only.
      payload.resolveOffset(batch.lastOffset());
      const caughtUp = Number(batch.highWatermark) <= Number(batch.lastOffset()) + 1;
      if (caughtUp && !this.draining && ingest.due(t, true) === undefined) await this.linger(ingest, lease, payload);
      // Rebalancing: no new insert; the batch is abandoned (check() throws) and the next owner reads it again.
      if (lease.rebalancing) lease.check();
      if (ingest.canCut && (this.draining || ingest.due(t, caughtUp) !== undefined)) await ingest.flush(lease);
      const done = ingest.committed >= 0 ? ingest.committed : Number(batch.firstOffset());
      this.metrics.lag.set({ topic, partition: String(partition) }, Math.max(0, Number(batch.highWatermark) - done));
    } catch (error) {
      // A flush may still run (the error came from decoding or another step): it ends before eachBatch does.
      const inflight = await ingest.settle().then(() => undefined, (e: unknown) => e);
      if (inflight !== undefined && inflight !== error) {
        logger.warn({ partition: `${topic}:${partition}`, error: describeError(inflight) }, 'flush in progress failed too');
      }
      if (error instanceof PartitionLostError) {
        this.abandon(payload, ingest, generation, error);
        return;
      }
      if (isKafkaOutage(error)) {
        // Kafka went away mid-batch (a dead-letter send, a commit): nothing more is committed; kafkajs's next request
        // fails too and the consumer joins again when Kafka answers. Not fatal.
        this.abandon(payload, ingest, generation, error as Error);
        return;
      }
      if (error instanceof ReformConflictError) {
        logger.error({ partition: `${topic}:${partition}`, error: error.message }, 'a batch could not be formed again: its rollups may lack rows the raw table holds');
        this.abandon(payload, ingest, generation, error);
        return;
      }
      if (error instanceof ColumnsChangedError) {
        // Rows were encoded for a column type the table no longer has; nothing of them was inserted. Read the columns
        // again and the partition again from its last durable offset: its rows are encoded anew.
        await this.table!.refresh().catch((e: unknown) => logger.warn({ error: describeError(e) }, 'reading the columns again failed (tried again at the next insert)'));
        this.abandon(payload, ingest, generation, error);
        return;
      }
      logger.error({ partition: `${topic}:${partition}`, error: describeError(error) }, 'fatal error: stopping without committing');
      this.fail(error as Error);
      throw error;
    }
  }

  /** Holds a caught-up partition's young batch until it is due by age, heartbeating; cut short by shutdown or rebalance. */
  private async linger(ingest: PartitionIngest, lease: { rebalancing: boolean; heartbeat(): Promise<void> }, payload: EachBatchPayload): Promise<void> {
    for (;;) {
      const wait = ingest.msUntilAge(this.tuning);
      if (wait <= 0 || wait === Infinity || this.draining || lease.rebalancing || !payload.isRunning()) return;
      await sleep(Math.min(wait, 100));
      await lease.heartbeat();
    }
  }

  /** A lost partition: drop its state and rewind kafkajs to the first offset not known durable, in case it stays ours. */
  private abandon(payload: EachBatchPayload, ingest: PartitionIngest, generation: number, error: Error): void {
    const { topic, partition } = payload.batch;
    if (this.ingests.get(partition) === ingest) this.ingests.delete(partition);
    const rewindTo = ingest.durableNext;
    if (rewindTo >= 0 && !payload.isStale() && this.generation === generation) this.consumer.seek({ topic, partition, offset: String(rewindTo) });
    this.options.logger.warn({ partition: `${topic}:${partition}`, rewindTo, reason: error.message }, 'partition abandoned');
  }

  /**
   * Stops cleanly: the batch in progress is flushed and committed (no waiting for its age), other partitions' buffered
   * rows are abandoned (not committed: the next owner reads them again), then the group is left.
   */
  async stop(): Promise<void> {
    this.draining = true;
    await this.consumer.disconnect();
    await this.deadLetters.close();
    await this.admin.disconnect();
    // No eachBatch runs any more: this process's entry table goes (a batch abandoned just now may name it; its next
    // owner's fence finds it gone).
    await this.rows.close().catch((error: unknown) => this.options.logger.warn({ error: describeError(error) }, 'dropping the entry table failed (the next owner drops it)'));
  }
}
