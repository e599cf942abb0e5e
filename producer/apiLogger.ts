/**
 * The logging SDK: what a service calls once per API call it serves or makes.
 *
 *   const apilog = await createApiLogger({ brokers: ['kafka:9092'], registry: 'http://registry:8081', topic: 'api_calls' });
 *   apilog.log({ api: 'payments.charge', method: 'POST', route: '/v1/charges', path: '/v1/charges', status: 201, ... });
 *   await apilog.close();
 *
 * `log(event)` is synchronous, never throws and allocates nothing when it accepts: it checks the event against
 * the schema's fields (validate.ts), puts a reference in a bounded queue (queue.ts) and returns. Encoding
 * (Avro, Confluent framing) and sending happen later, in batches, on a loop that keeps one batch in flight:
 * idempotent kafkajs producer, acks from all in-sync replicas, key = API name, Java-compatible murmur2
 * partitioning (partitioner.ts), any of Kafka's codecs (runtime/kafkaCodecs.ts; LZ4 by default).
 *
 * The caller hands the event over: do not change it after log(). Missing `event_id` and `ts` are filled in
 * (a random UUID, the time of the log() call) on a copy, when the event is encoded.
 *
 * Failure model:
 * - invalid event: refused by log() (returns false), counted by reason, `onReject` called; never sent.
 * - queue full: policy `drop` refuses the event (counted as dropped `queue_full`, a warning at most every
 *   `warnIntervalMs`); policy `wait` returns a promise that resolves true once the event is queued, or false
 *   (dropped `wait_timeout`) after `maxWaitMs`. log() itself never blocks either way.
 * - broker unavailable, a partition leader gone: the batch in flight is sent one partition per request, and the
 *   partitions not acknowledged are retried as they are (same messages, same partitions, so the idempotent
 *   producer's sequence numbers let the broker discard a copy it already has; partitionedSend.ts says why not one
 *   request per broker) with exponential backoff and jitter, until they are acknowledged; meanwhile the queue fills, then drops — unless a spool is
 *   configured, which takes everything behind the failing batch, in order, and drains once the broker is back.
 */
import { randomUUID } from 'node:crypto';
import type { Admin, Kafka, Producer } from 'kafkajs';
import { backoffDelay, type BackoffPolicy } from '../runtime/backoff.ts';
import { ConfigError, describeError } from '../runtime/errors.ts';
import { createKafka } from '../runtime/kafka.ts';
import { apiCallSchema, type EventSchemaVersion } from '../schemas/apiCall.ts';
import { FramedEncoder } from '../schemas/wire.ts';
import { PRODUCER_DELIVERY, registerEventSchema } from './apiCallProducer.ts';
import { compressionType, loadCodec } from '../runtime/kafkaCodecs.ts';
import { ProducerMetrics, type DropReason, type MetricsSnapshot } from './metrics.ts';
import { PartitionCount, PartitionedBatch, permanentBrokerError } from './partitionedSend.ts';
import { KeyPartitioner, type SlottedMessage } from './partitioner.ts';
import { EventQueue } from './queue.ts';
import { Spool } from './spool.ts';
import { EventValidator, type RejectReason } from './validate.ts';
import { WorkerProducer } from './workerProducer.ts';
import { resolveLoggerOptions, type ApiLoggerOptions, type LogEvent, type ResolvedLoggerOptions } from './loggerOptions.ts';

export { resolveLoggerOptions, type ApiLoggerOptions, type LogEvent, type ResolvedLoggerOptions, type WhenFull } from './loggerOptions.ts';

interface Waiter {
  readonly event: LogEvent;
  readonly size: number;
  readonly deadline: number;
  readonly resolve: (queued: boolean) => void;
}

/** The field names of a schema version, in order. */
const fieldNames = (version: EventSchemaVersion): readonly string[] =>
  (JSON.parse(apiCallSchema(version).text) as { fields: { name: string }[] }).fields.map((f) => f.name);

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * A function that returns a copy with event_id and ts filled in. Read field by field (not spread): log()
 * validated what property reads return, which includes getters and inherited properties that a spread would
 * lose. Generated from the schema's field names as one object literal (one hidden class, named property reads):
 * a loop of keyed reads and writes into an empty object cost ~3 µs per event in the middleware benchmark's profile.
 */
function compileWithIdAndTime(fields: readonly string[]): (event: LogEvent) => LogEvent {
  const props = fields.map((name) => {
    if (!IDENTIFIER.test(name)) throw new Error(`apiLogger.ts: field name ${JSON.stringify(name)} is not a plain identifier`);
    if (name === 'event_id') return 'event_id: e.event_id ?? randomUUID()';
    if (name === 'ts') return 'ts: e.ts ?? Date.now()';
    return `${name}: e.${name}`;
  });
  // eslint-disable-next-line @typescript-eslint/no-implied-eval -- generated from the schema's field names, checked above
  return new Function('randomUUID', `return function withIdAndTime(e) { return { ${props.join(', ')} }; };`)(randomUUID) as (event: LogEvent) => LogEvent;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Creates a logger: registers (or finds) the schema, connects the producer, opens the spool. */
export async function createApiLogger(options: ApiLoggerOptions): Promise<ApiLogger> {
  const resolved = resolveLoggerOptions(options);
  await loadCodec(resolved.compression);
  const schemaId = await registerEventSchema(resolved.registry, resolved.topic, apiCallSchema(resolved.schemaVersion).text);
  const spool = resolved.spool ? await Spool.open(resolved.spool.dir, resolved.spool.maxBytes) : undefined;
  const logger = new ApiLogger(resolved, schemaId, spool);
  await logger.start();
  return logger;
}

/** Retries of a send inside kafkajs before it reports the failure (it refuses 0 for an idempotent producer). */
const KAFKAJS_SEND_RETRIES = 1;

export class ApiLogger {
  readonly schemaId: number;
  private readonly o: ResolvedLoggerOptions;
  private readonly validator: EventValidator;
  private readonly queue: EventQueue<LogEvent>;
  private readonly encoder: FramedEncoder<LogEvent>;
  private readonly withIdAndTime: (event: LogEvent) => LogEvent;
  private readonly partitioner: KeyPartitioner;
  private readonly producer: Producer;
  /** Reads the topic's partition count: batches are sent one partition per request (partitionedSend.ts). */
  private readonly admin: Admin;
  private readonly partitions: PartitionCount;
  private readonly compression: ReturnType<typeof compressionType>;
  private readonly metricsState: ProducerMetrics;
  private readonly waiters: Waiter[] = [];
  private waiterTimer: NodeJS.Timeout | undefined;
  private lingerTimer: NodeJS.Timeout | undefined;
  private wakeScheduled = false;
  private pumping: Promise<void> | undefined;
  private connected = false;
  /** True from a failed send until a send succeeds: the spool (if any) takes everything behind it. */
  private degraded = false;
  private closing = false;
  private closed = false;
  private closeDeadline = Infinity;
  /** Events accepted in this process that are done: acknowledged, or dropped after acceptance. */
  private settled = 0;
  private readonly flushWaiters: { target: number; resolve: () => void }[] = [];
  private readonly lastWarn = new Map<string, number>();
  private readonly suppressed = new Map<string, number>();
  private readonly batchScratch: LogEvent[] = [];
  /** When the oldest event in the queue was queued (approximately: events left behind by a take count from the take). */
  private oldestQueuedAt = 0;
  /** The sender's retries: not sooner than half the ceiling, so a loop against a broker that is down never spins. */
  private readonly sendBackoff: BackoffPolicy;

  /** Use createApiLogger(). */
  constructor(options: ResolvedLoggerOptions, schemaId: number, private readonly spool: Spool | undefined) {
    this.o = options;
    this.schemaId = schemaId;
    this.sendBackoff = { initialMs: options.retryInitialMs, maxMs: options.retryMaxMs, jitter: 'equal' };
    const schema = apiCallSchema(options.schemaVersion);
    this.validator = new EventValidator({ maxEventBytes: options.maxEventBytes, maxAttributes: options.maxAttributes }, schema.text);
    this.queue = new EventQueue(options.maxQueuedEvents, options.maxQueuedBytes);
    this.encoder = new FramedEncoder<LogEvent>(schema.type, schemaId);
    this.withIdAndTime = compileWithIdAndTime(fieldNames(options.schemaVersion));
    this.partitioner = new KeyPartitioner(new Map(Object.entries(options.hotKeys)));
    this.compression = compressionType(options.compression);
    // A failed attempt (a leader gone, a broker down) comes back to this class's loop, which counts it (metrics:
    // retries), backs off with jitter and sends the same messages again, with the same sequence numbers (kafkajs
    // rolls them back when a request fails, and refreshes the metadata): no connection retries inside kafkajs, and
    // one quick send retry (it refuses an idempotent producer without), counted too, from kafkajs's log. Measured with
    // a partition leader SIGKILLed on the local cluster: one send waited ~8 s (acks=all, the dead broker still in the
    // other partitions' ISR until the controller fenced it), failed, and kafkajs's retry went to the new leader; none
    // of it was visible before. A `kafka` client passed in keeps its own retries, and only this loop's are counted.
    const onSendFailure = (retryCount: number) => {
      if (retryCount < KAFKAJS_SEND_RETRIES) this.metricsState.retries++; // the last failure reaches our loop
    };
    const kafka =
      options.kafka ??
      createKafka({
        brokers: options.brokers!, clientId: options.clientId, connectionTimeoutMs: 3000, retries: 0,
        ...(options.worker ? {} : { onSendFailure }),
        ...(options.logger ? { logger: options.logger } : {}),
      });
    this.producer = options.worker
      ? // The same producer settings, in a worker thread (sendWorker.ts); the admin client stays here.
        (new WorkerProducer(
          { brokers: options.brokers!, clientId: options.clientId, connectionTimeoutMs: 3000, sendRetries: KAFKAJS_SEND_RETRIES, ...(options.logger ? { logLevel: options.logger.level } : {}) },
          options.logger,
          onSendFailure,
        ) as unknown as Producer)
      : kafka.producer({
          createPartitioner: this.partitioner.kafkajs(),
          ...PRODUCER_DELIVERY,
          retry: { retries: KAFKAJS_SEND_RETRIES, initialRetryTime: 100, maxRetryTime: 100 },
        });
    this.admin = kafka.admin();
    this.partitions = new PartitionCount(this.admin, options.topic);
    this.metricsState = new ProducerMetrics(() => ({
      queueDepth: this.queue.length,
      queueBytes: this.queue.bytes,
      spoolBytes: this.spool?.pendingBytes ?? 0,
      waiting: this.waiters.length,
    }));
  }

  /** Connects, and starts draining a spool left by an earlier process. Failing to connect is not fatal: sends retry. */
  async start(): Promise<void> {
    try {
      await this.ensureConnected();
    } catch (error) {
      this.warn('connect', `apilog: cannot reach Kafka yet (${describeError(error)}); events queue and sends retry`);
    }
    if (this.spool?.hasData) this.wake();
  }

  /** The SDK's counters (cheap; a fresh object). */
  metrics(): MetricsSnapshot {
    return this.metricsState.snapshot();
  }

  /** For Prometheus: `apilog.prometheus.registerPrometheus(register)`. */
  get prometheus(): Pick<ProducerMetrics, 'registerPrometheus'> {
    return this.metricsState;
  }

  /**
   * Validates and queues one event; returns at once. true: queued. false: refused (invalid, dropped, closed).
   * A promise only with policy `wait` when the queue is full. Never throws.
   */
  log(event: LogEvent): boolean | Promise<boolean> {
    try {
      if (this.closing) return this.reject('closed', '', event);
      const size = this.validator.validate(event);
      if (size < 0) return this.reject(this.validator.lastReason, this.validator.lastField, event);
      if (this.waiters.length > 0 || !this.queue.push(event, size)) return this.full(event, size);
      this.metricsState.queued++;
      if (this.queue.length === 1) this.oldestQueuedAt = performance.now();
      if (this.lingerTimer === undefined && !this.wakeScheduled && this.pumping === undefined) {
        this.lingerTimer = setTimeout(this.onLinger, this.o.lingerMs);
      } else if (this.queue.length === this.o.batchMaxEvents && this.pumping === undefined) {
        this.wake();
      }
      return true;
    } catch (error) {
      // A hostile object (a getter that throws, a revoked proxy): refused like any invalid event.
      return this.reject('unreadable', describeError(error), event);
    }
  }

  private readonly onLinger = () => {
    this.lingerTimer = undefined;
    this.wake();
  };

  /**
   * Why the last refused log() call was refused (valid until the next refusal): an invalid event's reason and
   * field, or `queue_full` (read it right after log() returns false).
   */
  readonly lastRefusal: { reason: RejectReason | 'queue_full'; field: string } = { reason: 'not_an_object', field: '' };

  private reject(reason: RejectReason, field: string, event: unknown): false {
    this.metricsState.rejectedBy[reason]++;
    this.lastRefusal.reason = reason;
    this.lastRefusal.field = field;
    const onReject = this.o.onReject;
    if (onReject) {
      try {
        onReject(reason, field, event);
      } catch (error) {
        this.warn('onReject', `apilog: the onReject callback threw: ${describeError(error)}`);
      }
    }
    return false;
  }

  private full(event: LogEvent, size: number): boolean | Promise<boolean> {
    if (this.o.whenFull === 'wait' && this.waiters.length < this.o.maxWaiting) {
      return new Promise<boolean>((resolve) => {
        this.waiters.push({ event, size, deadline: Date.now() + this.o.maxWaitMs, resolve });
        this.waiterTimer ??= setInterval(this.expireWaiters, Math.max(10, Math.min(100, this.o.maxWaitMs / 4)));
        this.wake();
      });
    }
    this.metricsState.droppedBy.queue_full++;
    this.lastRefusal.reason = 'queue_full';
    this.lastRefusal.field = '';
    this.warn('queue_full', 'apilog: queue full, dropping events');
    return false;
  }

  private readonly expireWaiters = () => {
    const now = Date.now();
    while (this.waiters.length > 0 && this.waiters[0]!.deadline <= now) {
      this.waiters.shift()!.resolve(false);
      this.metricsState.droppedBy.wait_timeout++;
      this.warn('wait_timeout', 'apilog: queue full for longer than maxWaitMs, dropping events');
    }
    this.stopWaiterTimerIfIdle();
  };

  private stopWaiterTimerIfIdle(): void {
    if (this.waiters.length === 0 && this.waiterTimer !== undefined) {
      clearInterval(this.waiterTimer);
      this.waiterTimer = undefined;
    }
  }

  private admitWaiters(): void {
    while (this.waiters.length > 0 && this.queue.push(this.waiters[0]!.event, this.waiters[0]!.size)) {
      this.metricsState.queued++;
      this.waiters.shift()!.resolve(true);
    }
    this.stopWaiterTimerIfIdle();
  }

  /** A warning at most once per warnIntervalMs per kind, with the count of the ones suppressed. */
  private warn(kind: string, message: string): void {
    const logger = this.o.logger;
    if (!logger) return;
    const now = Date.now();
    const last = this.lastWarn.get(kind) ?? -Infinity;
    if (now - last < this.o.warnIntervalMs) {
      this.suppressed.set(kind, (this.suppressed.get(kind) ?? 0) + 1);
      return;
    }
    this.lastWarn.set(kind, now);
    const suppressed = this.suppressed.get(kind) ?? 0;
    this.suppressed.set(kind, 0);
    logger.warn({ kind, suppressed, ...this.metricsState.snapshot(), sendLatency: undefined }, message);
  }

  private wake(): void {
    if (this.lingerTimer !== undefined) {
      clearTimeout(this.lingerTimer);
      this.lingerTimer = undefined;
    }
    if (this.pumping !== undefined || this.wakeScheduled) return;
    this.wakeScheduled = true;
    setImmediate(() => {
      this.wakeScheduled = false;
      if (this.pumping === undefined) {
        this.pumping = this.pump().finally(() => {
          this.pumping = undefined;
          // Events logged while the last send was completing.
          if (this.queue.length > 0 || this.waiters.length > 0 || this.spool?.hasData) this.wake();
        });
      }
    });
  }

  private async ensureConnected(): Promise<void> {
    if (this.connected) return;
    await this.producer.connect();
    await this.admin.connect();
    this.connected = true;
  }

  /**
   * The loop that moves events from the queue (and the spool) to Kafka, one batch in flight. While a batch from
   * the queue is in flight, the next one is encoded (encoding overlaps the round trip, not the caller).
   */
  private async pump(): Promise<void> {
    /** The next batch, encoded while the previous one was in flight: older than anything still queued. */
    let next: SlottedMessage[] | undefined;
    try {
      for (;;) {
        if (this.spool && (this.spool.hasData || (this.degraded && (this.queue.length > 0 || next)))) {
          await this.spill(next ?? []);
          next = undefined;
          if (!this.spool.hasData) continue;
          const batch = await this.spool.read(this.o.batchMaxEvents, this.o.batchMaxBytes);
          const fresh = batch.messages.length - batch.replayed;
          if (await this.sendWithRetry(batch.messages, fresh, true)) {
            await this.spool.commit(batch.nextOffset);
            this.metricsState.replayed += batch.replayed;
          } else {
            return; // closing: what is left stays in the spool for the next process
          }
          continue;
        }
        if (next === undefined && this.queue.length === 0) {
          this.admitWaiters();
          if (this.queue.length === 0) return;
        }
        if (next === undefined) await this.lingerForCompany();
        const messages = next ?? this.encodeBatch();
        next = undefined;
        if (messages.length === 0) continue;
        const sending = this.sendWithRetry(messages, messages.length, false);
        if (this.queue.length >= this.o.batchMaxEvents) {
          // A full batch is waiting (a backlog): let kafkajs put the request on the wire, then encode the next
          // batch during the round trip. Short of a full batch, events gather during the round trip instead
          // (a batch encoded now would hold the few events of one tick, and each send costs ~0.1-1 ms of CPU).
          await new Promise<void>((r) => setImmediate(r));
          next = this.encodeBatch();
        }
        if (!(await sending)) {
          if (next) {
            if (this.spool) this.abandoned = [...(this.abandoned ?? []), ...next];
            else this.drop('close_timeout', next.length);
          }
          return;
        }
      }
    } catch (error) {
      // A spool I/O error or a bug: say so loudly; the next log() wakes the loop again.
      if (next) this.drop('encode_failed', next.length);
      this.o.logger?.error({ err: error }, `apilog: the send loop failed: ${describeError(error)}`);
      await sleep(this.o.retryInitialMs);
    }
  }

  /**
   * Short of a full batch, waits until the oldest queued event has waited lingerMs (as Kafka's linger.ms does
   * after a send as well as before the first): at a steady rate, batches then hold lingerMs' worth of events
   * or a round trip's, whichever is more. Not when flushing or closing.
   */
  private async lingerForCompany(): Promise<void> {
    for (;;) {
      if (this.queue.length === 0 || this.queue.length >= this.o.batchMaxEvents || this.closing || this.flushWaiters.length > 0) return;
      const wait = this.oldestQueuedAt + this.o.lingerMs - performance.now();
      if (wait <= 1) return;
      await sleep(wait);
    }
  }

  /** Takes one batch from the queue (letting waiters in) and encodes it. */
  private encodeBatch(): SlottedMessage[] {
    const events = this.queue.take(this.o.batchMaxEvents, this.o.batchMaxBytes, this.batchScratch);
    this.admitWaiters();
    if (this.queue.length > 0) this.oldestQueuedAt = performance.now();
    const messages: SlottedMessage[] = [];
    for (let i = 0; i < events.length; i++) {
      const event = events[i]!;
      events[i] = undefined as unknown as LogEvent;
      try {
        const complete = event.event_id === undefined || event.ts === undefined ? this.withIdAndTime(event) : event;
        const key = complete.api;
        messages.push({ key, value: this.encoder.encode(complete), slot: this.partitioner.nextSlot(key) });
      } catch (error) {
        this.drop('encode_failed', 1);
        this.warn('encode_failed', `apilog: an event passed validation but could not be encoded: ${describeError(error)}`);
      }
    }
    events.length = 0;
    return messages;
  }

  /**
   * Moves `before` (older) and then the whole queue into the spool, in order; counts what does not fit.
   * Appends are serialized (the send loop and the watch timer both spill).
   */
  private spill(before: SlottedMessage[]): Promise<void> {
    const next = this.spillChain.then(() => this.spillNow(before));
    this.spillChain = next.catch((error: unknown) => {
      this.o.logger?.error({ err: error }, `apilog: writing to the spool failed: ${describeError(error)}`);
    });
    return next;
  }

  private spillChain: Promise<void> = Promise.resolve();

  private async spillNow(before: SlottedMessage[]): Promise<void> {
    const spool = this.spool!;
    let messages = before;
    while (messages.length > 0 || this.queue.length > 0) {
      if (messages.length === 0) messages = this.encodeBatch();
      if (messages.length === 0) continue;
      const fitted = await spool.append(messages);
      this.metricsState.spooled += fitted;
      if (fitted < messages.length) {
        this.drop('spool_full', messages.length - fitted);
        this.warn('spool_full', 'apilog: spool full, dropping events');
      }
      messages = [];
    }
  }

  /**
   * While a send is failing, or has been in flight for over a second, the queue behind it goes to the spool every
   * 20 ms, so memory never fills during an outage (a kafkajs send to a dead broker can take seconds to fail).
   */
  private watchSend(started: number): NodeJS.Timeout | undefined {
    if (!this.spool) return undefined;
    return setInterval(() => {
      if (this.queue.length > 0 && (this.degraded || performance.now() - started > 1000)) {
        this.spill([]).catch(() => undefined); // logged by spill()
      }
    }, 20);
  }

  private drop(reason: DropReason, count: number): void {
    this.metricsState.droppedBy[reason] += count;
    this.settle(count);
  }

  private settle(count: number): void {
    this.settled += count;
    while (this.flushWaiters.length > 0 && this.flushWaiters[0]!.target <= this.settled) this.flushWaiters.shift()!.resolve();
  }

  /**
   * Sends one batch until it is acknowledged (true), dropped as permanently refused (true), or, when closing,
   * the close deadline passes (false: the batch goes to the spool if there is one, else it is counted dropped).
   * `fresh` is how many of its events were accepted by this process (the rest are replayed from the spool).
   */
  private async sendWithRetry(messages: SlottedMessage[], fresh: number, fromSpool: boolean): Promise<boolean> {
    const started = performance.now();
    const watch = this.watchSend(started);
    const inFlight = { fresh: fromSpool || this.spool ? 0 : fresh };
    this.inFlight = inFlight;
    try {
      return await this.sendUntilDone(messages, fresh, fromSpool, started);
    } finally {
      clearInterval(watch);
      this.inFlight = undefined;
    }
  }

  private async sendUntilDone(messages: SlottedMessage[], fresh: number, fromSpool: boolean, started: number): Promise<boolean> {
    // One request per partition; a retry sends only the partitions not acknowledged yet (partitionedSend.ts).
    let batch: PartitionedBatch<SlottedMessage> | undefined;
    /** Gives up on what is not acknowledged yet (closing): the acknowledged part is sent, the rest abandoned. */
    const abandonRest = () => {
      const pending = batch?.pending() ?? messages;
      const freshPending = Math.min(fresh, pending.length);
      this.metricsState.sent += messages.length - pending.length;
      if (!this.closed) this.settle(fresh - freshPending);
      return this.abandon(pending, freshPending, fromSpool);
    };
    for (let attempt = 0; ; attempt++) {
      try {
        await this.ensureConnected();
        if (batch === undefined) {
          const count = await this.partitions.get();
          batch = new PartitionedBatch(messages, (m) => this.partitioner.partition(m.key, m.slot, count));
        }
        await batch.send(this.producer, this.o.topic, this.compression);
        this.degraded = false;
        this.metricsState.batches++;
        this.metricsState.sent += messages.length;
        this.metricsState.observeSend((performance.now() - started) / 1000);
        if (!this.closed) this.settle(fresh); // after close() the batch was already counted as dropped
        return true;
      } catch (error) {
        const permanent = permanentBrokerError(error);
        if (permanent !== undefined) {
          // What was acknowledged is sent; the rest is dropped.
          const pending = batch?.pending().length ?? messages.length;
          const freshPending = Math.min(fresh, pending);
          this.o.logger?.error({ err: error, events: pending }, `apilog: Kafka refused a batch (${permanent}); dropping it`);
          this.metricsState.sent += messages.length - pending;
          this.metricsState.droppedBy.broker_rejected += pending - freshPending;
          if (!this.closed) this.settle(fresh - freshPending);
          this.drop('broker_rejected', freshPending);
          return true;
        }
        this.metricsState.retries++;
        this.degraded = true;
        this.warn('send_failed', `apilog: sending to Kafka failed, retrying: ${describeError(error)}`);
        const delay = backoffDelay(this.sendBackoff, attempt + 1);
        const until = Date.now() + delay;
        while (Date.now() < until) {
          if (this.closing && Date.now() >= this.closeDeadline) return abandonRest();
          await sleep(Math.min(50, until - Date.now()));
        }
        if (this.closing && Date.now() >= this.closeDeadline) return abandonRest();
      }
    }
  }

  private abandon(messages: SlottedMessage[], fresh: number, fromSpool: boolean): false {
    // A batch read from the spool stays there (its position is not committed): the next process sends it.
    if (fromSpool) return false;
    if (this.spool) {
      // Appended behind what the spool holds: the only case where order is not kept (and delivery is at least once).
      this.abandoned = messages;
      return false;
    }
    if (!this.closed) this.drop('close_timeout', fresh);
    return false;
  }

  private abandoned: SlottedMessage[] | undefined;
  /** The batch being sent, for close() to account for when a send outlasts the deadline (no spool). */
  private inFlight: { fresh: number } | undefined;

  /** Resolves when every event accepted before the call is acknowledged or dropped (or after `timeoutMs`: false). */
  async flush(timeoutMs = Infinity): Promise<boolean> {
    const target = this.metricsState.queued + this.waiters.length;
    if (this.settled >= target) return true;
    this.wake();
    let timer: NodeJS.Timeout | undefined;
    const done = new Promise<boolean>((resolve) => {
      this.flushWaiters.push({ target, resolve: () => resolve(true) });
      this.flushWaiters.sort((a, b) => a.target - b.target);
    });
    if (timeoutMs === Infinity) return done;
    const timeout = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), timeoutMs);
    });
    try {
      return await Promise.race([done, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Stops accepting events, flushes for at most closeTimeoutMs, then disconnects. With a spool, what could not
   * be sent stays in it for the next process; without, it is counted as dropped (`close_timeout`).
   */
  async close(): Promise<MetricsSnapshot> {
    if (this.closed) return this.metrics();
    this.closing = true;
    this.closeDeadline = Date.now() + this.o.closeTimeoutMs;
    const flushed = await this.flush(this.o.closeTimeoutMs);
    for (const w of this.waiters.splice(0)) {
      w.resolve(false);
      this.drop('close_timeout', 1);
    }
    this.stopWaiterTimerIfIdle();
    if (this.lingerTimer) clearTimeout(this.lingerTimer);
    if (flushed) this.closed = true;
    else {
      // A send to a hung broker can outlast the deadline; give it a moment, no more.
      await Promise.race([this.pumping, sleep(2000)]);
      if (this.inFlight && this.pumping) {
        // Still not acknowledged: counted as dropped, though the broker may yet take it.
        this.drop('close_timeout', this.inFlight.fresh);
      }
      this.closed = true;
      if (this.spool) {
        // The failing batch first, then everything behind it: the next process sends them in order (at least once).
        await this.spill(this.abandoned ?? []);
      } else {
        const left = this.queue.take(Infinity, Infinity, []);
        this.drop('close_timeout', left.length);
      }
    }
    await this.producer.disconnect().catch((error: unknown) => this.warn('disconnect', `apilog: disconnect failed: ${describeError(error)}`));
    await this.admin.disconnect().catch((error: unknown) => this.warn('disconnect', `apilog: disconnect failed: ${describeError(error)}`));
    await this.spool?.close();
    return this.metrics();
  }
}

