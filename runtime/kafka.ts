/**
 * The kafkajs client both sides use, and the reachability check that turns "Kafka is not there" into one
 * clear line within seconds instead of kafkajs's long retry loop.
 */
import kafkajs, { Kafka, logLevel, type KafkaConfig } from 'kafkajs';

// kafkajs is CommonJS and spreads its error classes into its exports: Node finds them through the default export only.
const { KafkaJSProtocolError, KafkaJSSASLAuthenticationError } = kafkajs;

// Our producers pick the partitioner explicitly (Java-compatible murmur2); kafkajs's v2 migration notice is noise.
process.env['KAFKAJS_NO_PARTITIONER_WARNING'] ??= '1';
import { kafkaLevelFor, kafkaLogCreator, type Logger } from './log.ts';
import { registerKafkaCodecs } from './kafkaCodecs.ts';
import { stopIdleRequestQueueLoop } from './kafkajsIdleLoop.ts';
import { leanRecordEncoding } from './kafkajsRecords.ts';
import { leanFetchDecoding } from './kafkajsFetch.ts';
import { kafkaClient } from './kafkajsGrouping.ts';
import { ConfigError, describeError } from './errors.ts';

export interface KafkaOptions {
  /** Bootstrap brokers, host:port. */
  readonly brokers: readonly string[];
  readonly clientId: string;
  readonly logger?: Logger;
  /** TLS and SASL, passed to kafkajs as they are. */
  readonly ssl?: KafkaConfig['ssl'];
  readonly sasl?: KafkaConfig['sasl'];
  /** @default 5000 */
  readonly connectionTimeoutMs?: number;
  /**
   * How often kafkajs itself retries a failed request (connecting, metadata, and the clients' own requests) before it
   * reports the failure. @default 8 (up to ~10 s apart)
   */
  readonly retries?: number;
  /**
   * Called when kafkajs's producer retries a failed send itself, with the number of retries it made before: it says
   * so only in its log ("Failed to send messages", with `retryCount`), which is read here whatever the log level.
   */
  readonly onSendFailure?: (retryCount: number) => void;
}

/**
 * The kafkajs settings of every client we create, TLS and SASL included: the consumer, the producers and the
 * preflight check all take their config from here.
 */
export function kafkaConfig(options: KafkaOptions): KafkaConfig {
  const config: KafkaConfig = {
    clientId: options.clientId,
    brokers: [...options.brokers],
    connectionTimeout: options.connectionTimeoutMs ?? 5000,
    requestTimeout: 30_000,
    retry: { initialRetryTime: 300, retries: options.retries ?? 8, maxRetryTime: 10_000 },
    logLevel: options.logger ? kafkaLevelFor(options.logger) : logLevel.NOTHING,
  };
  if (options.logger) config.logCreator = kafkaLogCreator(options.logger);
  if (options.onSendFailure) withSendFailures(config, options.onSendFailure);
  if (options.ssl !== undefined) config.ssl = options.ssl;
  if (options.sasl !== undefined) config.sasl = options.sasl;
  return config;
}

/** Lets kafkajs's error lines through to `onSendFailure` (and the configured logger only at its own level). */
function withSendFailures(config: KafkaConfig, onSendFailure: (retryCount: number) => void): void {
  const shown = config.logLevel ?? logLevel.NOTHING;
  const forward = config.logCreator;
  config.logLevel = Math.max(shown, logLevel.ERROR);
  config.logCreator = (level) => {
    const next = forward?.(level);
    return (entry) => {
      const { message, retryCount } = entry.log as { message: string; retryCount?: unknown };
      if (entry.namespace === 'Producer' && typeof retryCount === 'number' && message.startsWith('Failed to send messages')) onSendFailure(retryCount);
      if (next && entry.level <= shown) next(entry);
    };
  };
}

export function createKafka(options: KafkaOptions): Kafka {
  // kafkajs keeps codecs per process: every client (consumers, producers, tests, benchmarks) gets all of Kafka's.
  registerKafkaCodecs();
  // And its request queues poll themselves while idle (kafkajsIdleLoop.ts): stopped, for every client of the process.
  stopIdleRequestQueueLoop();
  // And it encodes each produced record through a 512-byte Encoder of its own (kafkajsRecords.ts): one exact buffer.
  leanRecordEncoding();
  // And it decodes each fetched record through BigInt Longs (kafkajsFetch.ts): plain numbers, the same record.
  leanFetchDecoding();
  // And it groups each send's messages by partition copying an array per message (kafkajsGrouping.ts): one pass.
  const Client = kafkaClient();
  return new Client(kafkaConfig(options));
}

/** What a client needs to reach the cluster: where it is, and the TLS and SASL it demands. */
export type KafkaTarget = Pick<KafkaOptions, 'brokers' | 'ssl' | 'sasl'>;

/** The preflight's settings: the same client config (same TLS and SASL), short timeouts and one retry. */
export function preflightKafkaConfig(target: KafkaTarget, timeoutMs: number): KafkaConfig {
  return {
    ...kafkaConfig({ ...target, clientId: 'apilog-preflight', connectionTimeoutMs: Math.min(3000, timeoutMs) }),
    requestTimeout: timeoutMs,
    retry: { retries: 1, initialRetryTime: 200, maxRetryTime: 1000 },
  };
}

/** Broker answers that refuse this client's TLS/SASL settings or credentials: the same settings will never pass. */
const SECURITY_REFUSALS: ReadonlySet<string> = new Set(['ILLEGAL_SASL_STATE', 'UNSUPPORTED_SASL_MECHANISM', 'SASL_AUTHENTICATION_FAILED']);

/** Node's codes for a server certificate this process does not trust (or that is not the server's). */
export const UNTRUSTED_CERTIFICATE: ReadonlySet<string> = new Set([
  'SELF_SIGNED_CERT_IN_CHAIN', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_HAS_EXPIRED', 'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/** True when the error, or one it wraps (kafkajs's KafkaJSNonRetriableError), is such a refusal or an untrusted certificate. */
function refusesSecurity(error: unknown): boolean {
  for (let e = error, depth = 0; e instanceof Error && depth < 4; e = e.cause, depth++) {
    if (e instanceof KafkaJSSASLAuthenticationError) return true;
    if (e instanceof KafkaJSProtocolError && SECURITY_REFUSALS.has(e.type)) return true;
    // kafkajs's KafkaJSConnectionError keeps the socket error's code.
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && UNTRUSTED_CERTIFICATE.has(code)) return true;
  }
  return false;
}

/**
 * Resolves when a broker answers a metadata request; rejects with kafkajs's error otherwise, or with a ConfigError
 * (not retriable) when the broker refuses the client's TLS/SASL settings or credentials. `timeoutMs` bounds each
 * request; the overall deadline and the UnreachableError wording are the caller's (cli/preflight.ts).
 */
export async function reachKafka(target: KafkaTarget, timeoutMs = 10_000): Promise<void> {
  const admin = new Kafka(preflightKafkaConfig(target, timeoutMs)).admin();
  try {
    await admin.connect();
    await admin.describeCluster();
  } catch (error) {
    if (!refusesSecurity(error)) throw error;
    throw new ConfigError(`Kafka at ${target.brokers.join(',')} refused this client's TLS/SASL settings: ${describeError(error)} (check --kafka-ca, --kafka-sasl, KAFKA_SASL_USERNAME, KAFKA_SASL_PASSWORD)`, { cause: error });
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}
