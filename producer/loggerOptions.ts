/**
 * What a service passes to createApiLogger() (apiLogger.ts), and how it is checked: unknown option names, positive
 * sizes and times, the compression and schema version, the registry as a URL or a client. Everything is resolved
 * once, here, with its default; the sender reads only the resolved options.
 */
import type { Kafka } from 'kafkajs';
import { ConfigError } from '../runtime/errors.ts';
import { COMPRESSIONS, type CompressionName } from '../runtime/kafkaCodecs.ts';
import type { Logger } from '../runtime/log.ts';
import { LATEST_SCHEMA_VERSION, type ApiCallEvent, type EventSchemaVersion } from '../schemas/apiCall.ts';
import { SchemaRegistryClient } from '../schemas/registry.ts';
import type { RejectReason } from './validate.ts';

type NullableField = 'client_id' | 'client_ip' | 'user_id' | 'tenant_id' | 'trace_id' | 'span_id' | 'error_class' | 'error_message';

/**
 * What log() takes: an ApiCallEvent whose event_id, ts, nullable fields and attributes may be left out, and the
 * fields schema version 2 added (each with a default). A logger pinned to version 1 does not send those.
 */
export type LogEvent = Omit<ApiCallEvent, 'event_id' | 'ts' | NullableField | 'attributes'> & {
  event_id?: string;
  ts?: number;
  attributes?: Record<string, string>;
  /** Version 2: 'http' (HTTP/1.x), 'h2', 'grpc', 'graphql'. @default 'http' */
  protocol?: string;
  /** Version 2: cloud region or data centre of the instance. @default '' */
  region?: string;
  /** Version 2: 0 for a first attempt, 1 for the first retry, … @default 0 */
  retry_attempt?: number;
  /** Version 2: the part of latency_us spent waiting on upstream dependencies, µs. @default null */
  upstream_latency_us?: number | null;
  /** Version 2: the caller's User-Agent. @default null */
  user_agent?: string | null;
} & { [K in NullableField]?: string | null };

export type WhenFull = 'drop' | 'wait';

export interface ApiLoggerOptions {
  /** Kafka bootstrap brokers, host:port. Required unless `kafka` is given. */
  readonly brokers?: readonly string[];
  /** A kafkajs client to use instead of creating one from `brokers` (TLS, SASL, ...). */
  readonly kafka?: Kafka;
  /** The Confluent-compatible schema registry: its URL or a client. */
  readonly registry: string | SchemaRegistryClient;
  /** The topic of API-call events; the schema is registered under `<topic>-value`. */
  readonly topic: string;
  /**
   * The version of the event schema written (schemas/avro/api_call.v<N>.avsc). Pin an older one while a consumer
   * that reads only it is still deployed; fields a version lacks are not sent. @default 2 (the latest)
   */
  readonly schemaVersion?: EventSchemaVersion;
  /** @default 'apilog-sdk' */
  readonly clientId?: string;
  /** Batch compression: 'none', 'gzip', 'snappy', 'lz4' or 'zstd' (docs/interop.md: which to choose). @default 'lz4' */
  readonly compression?: CompressionName;
  /** Most events held in memory. @default 50000 */
  readonly maxQueuedEvents?: number;
  /** Most estimated bytes held in memory. @default 33554432 (32 MiB) */
  readonly maxQueuedBytes?: number;
  /** What log() does when the queue is full. @default 'drop' */
  readonly whenFull?: WhenFull;
  /** Policy `wait`: how long an event may wait for room before it is dropped. @default 5000 */
  readonly maxWaitMs?: number;
  /** Policy `wait`: most log() calls waiting at once; beyond that, events are dropped. @default 10000 */
  readonly maxWaiting?: number;
  /** Most events in one produce request. @default 5000 */
  readonly batchMaxEvents?: number;
  /** Most estimated bytes in one produce request. @default 1048576 */
  readonly batchMaxBytes?: number;
  /**
   * How long the oldest event of a batch short of batchMaxEvents waits for company (also after a send). Each
   * produce request costs kafkajs ~0.5-1 ms of CPU however few events it carries (docs/performance.md), and a
   * batch is one request per partition: at 4,000 events/s, 50 ms instead of 10 cut the SDK's CPU per event by a
   * third; rows become queryable up to this much later. flush() and close() do not wait for it. @default 50
   */
  readonly lingerMs?: number;
  /** Largest event accepted (UTF-8 bytes of its strings + 10 per number). @default 65536 */
  readonly maxEventBytes?: number;
  /** Most attributes on one event. @default 64 */
  readonly maxAttributes?: number;
  /** First retry delay after a failed send; doubles up to `retryMaxMs`, with jitter. @default 100 */
  readonly retryInitialMs?: number;
  /** @default 5000 */
  readonly retryMaxMs?: number;
  /** An on-disk spool that takes what the broker cannot (outages of minutes). @default none */
  readonly spool?: { readonly dir: string; /** @default 1073741824 (1 GiB) */ readonly maxBytes?: number };
  /**
   * Opt-in spreading of hot APIs: API name → number of partitions its events are spread over (round robin,
   * starting at its murmur2 partition). Spread APIs lose per-API ordering across those partitions.
   * @default {}
   */
  readonly hotKeys?: Readonly<Record<string, number>>;
  /** Called (synchronously, errors swallowed and counted) for each event log() refuses as invalid. */
  readonly onReject?: (reason: RejectReason, field: string, event: unknown) => void;
  /** Where warnings go (queue full, broker unavailable). @default none */
  readonly logger?: Logger;
  /** At most one warning of a kind per this interval. @default 10000 */
  readonly warnIntervalMs?: number;
  /** close() flushes for at most this long. @default 10000 */
  readonly closeTimeoutMs?: number;
  /**
   * Send from a worker thread: kafkajs's record encoding, compression and network I/O (most of what an event costs,
   * docs/performance.md) run beside the calling thread's event loop instead of on it; validation, Avro encoding,
   * batching, retries and the spool stay on the calling thread. Needs `brokers` (a `kafka` client cannot move to
   * another thread). @default false
   */
  readonly worker?: boolean;
}

export type ResolvedLoggerOptions = Readonly<
  Required<Omit<ApiLoggerOptions, 'brokers' | 'kafka' | 'spool' | 'onReject' | 'logger' | 'registry'>> & {
    brokers: readonly string[] | undefined;
    kafka: Kafka | undefined;
    registry: SchemaRegistryClient;
    spool: { dir: string; maxBytes: number } | undefined;
    onReject: ApiLoggerOptions['onReject'];
    logger: Logger | undefined;
  }
>;

const KNOWN_OPTIONS = new Set([
  'brokers', 'kafka', 'registry', 'topic', 'schemaVersion', 'clientId', 'compression', 'maxQueuedEvents', 'maxQueuedBytes', 'whenFull',
  'maxWaitMs', 'maxWaiting', 'batchMaxEvents', 'batchMaxBytes', 'lingerMs', 'maxEventBytes', 'maxAttributes',
  'retryInitialMs', 'retryMaxMs', 'spool', 'hotKeys', 'onReject', 'logger', 'warnIntervalMs', 'closeTimeoutMs', 'worker',
]);

function positive(name: string, value: number | undefined, fallback: number, min = 1): number {
  const v = value ?? fallback;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min) throw new ConfigError(`option ${name} must be a number >= ${min}, got ${String(v)}`);
  return v;
}

/** Validates options, fills defaults; unknown or conflicting options fail here with a message naming them. */
export function resolveLoggerOptions(options: ApiLoggerOptions): ResolvedLoggerOptions {
  for (const key of Object.keys(options)) if (!KNOWN_OPTIONS.has(key)) throw new ConfigError(`unknown option ${key}`);
  if (options.kafka === undefined && (options.brokers === undefined || options.brokers.length === 0)) {
    throw new ConfigError('option brokers is required (or pass a kafkajs client as kafka)');
  }
  if (options.kafka !== undefined && options.brokers !== undefined) throw new ConfigError('give either brokers or kafka, not both');
  if (options.worker !== undefined && typeof options.worker !== 'boolean') throw new ConfigError('option worker must be true or false');
  if (options.worker === true && options.kafka !== undefined) throw new ConfigError('option worker needs brokers: a kafkajs client passed as kafka cannot move to the worker thread');
  if (typeof options.topic !== 'string' || !/^[A-Za-z0-9._-]{1,249}$/.test(options.topic)) {
    throw new ConfigError(`option topic "${String(options.topic)}" is not a valid Kafka topic name`);
  }
  const schemaVersion = options.schemaVersion ?? LATEST_SCHEMA_VERSION;
  if (schemaVersion !== 1 && schemaVersion !== 2) throw new ConfigError(`option schemaVersion must be 1 or 2, got ${String(schemaVersion)}`);
  const compression = options.compression ?? 'lz4';
  if (!COMPRESSIONS.includes(compression)) throw new ConfigError(`option compression must be one of ${COMPRESSIONS.join(', ')}`);
  const whenFull = options.whenFull ?? 'drop';
  if (whenFull !== 'drop' && whenFull !== 'wait') throw new ConfigError(`option whenFull must be 'drop' or 'wait'`);
  const hotKeys = options.hotKeys ?? {};
  for (const [api, spread] of Object.entries(hotKeys)) {
    if (!Number.isInteger(spread) || spread < 1 || spread > 255) throw new ConfigError(`option hotKeys["${api}"] must be an integer 1..255`);
  }
  const registry = typeof options.registry === 'string' ? new SchemaRegistryClient({ url: options.registry }) : options.registry;
  if (!(registry instanceof SchemaRegistryClient)) throw new ConfigError('option registry must be a URL or a SchemaRegistryClient');
  const batchMaxBytes = positive('batchMaxBytes', options.batchMaxBytes, 1_048_576, 1024);
  const maxEventBytes = positive('maxEventBytes', options.maxEventBytes, 65_536, 256);
  if (maxEventBytes > batchMaxBytes) throw new ConfigError('option maxEventBytes must not exceed batchMaxBytes');
  return {
    brokers: options.brokers,
    kafka: options.kafka,
    registry,
    topic: options.topic,
    schemaVersion,
    clientId: options.clientId ?? 'apilog-sdk',
    compression,
    maxQueuedEvents: positive('maxQueuedEvents', options.maxQueuedEvents, 50_000),
    maxQueuedBytes: positive('maxQueuedBytes', options.maxQueuedBytes, 32 * 1024 * 1024, 1024),
    whenFull,
    maxWaitMs: positive('maxWaitMs', options.maxWaitMs, 5000, 0),
    maxWaiting: positive('maxWaiting', options.maxWaiting, 10_000, 0),
    batchMaxEvents: positive('batchMaxEvents', options.batchMaxEvents, 5000),
    batchMaxBytes,
    lingerMs: positive('lingerMs', options.lingerMs, 50, 0),
    maxEventBytes,
    maxAttributes: positive('maxAttributes', options.maxAttributes, 64, 0),
    retryInitialMs: positive('retryInitialMs', options.retryInitialMs, 100),
    retryMaxMs: positive('retryMaxMs', options.retryMaxMs, 5000),
    spool: options.spool === undefined ? undefined : { dir: options.spool.dir, maxBytes: positive('spool.maxBytes', options.spool.maxBytes, 1024 ** 3, 1024) },
    hotKeys,
    onReject: options.onReject,
    logger: options.logger,
    warnIntervalMs: positive('warnIntervalMs', options.warnIntervalMs, 10_000, 0),
    closeTimeoutMs: positive('closeTimeoutMs', options.closeTimeoutMs, 10_000, 0),
    worker: options.worker ?? false,
  };
}
