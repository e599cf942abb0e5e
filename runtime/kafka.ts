/**
 * The kafkajs client both sides use, and the reachability check that turns "Kafka is not there" into one
 * clear line within seconds instead of kafkajs's long retry loop.
 */
import { Kafka, logLevel, type KafkaConfig } from 'kafkajs';

// Our producers pick the partitioner explicitly (Java-compatible murmur2); kafkajs's v2 migration notice is noise.
process.env['KAFKAJS_NO_PARTITIONER_WARNING'] ??= '1';
import { kafkaLevelFor, kafkaLogCreator, type Logger } from './log.ts';
import { registerLz4Codec } from '../producer/codecs.ts';

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
}

export function createKafka(options: KafkaOptions): Kafka {
  // The SDK writes LZ4 by default; kafkajs keeps codecs per process, so every client (consumers included) gets it.
  registerLz4Codec();
  const config: KafkaConfig = {
    clientId: options.clientId,
    brokers: [...options.brokers],
    connectionTimeout: options.connectionTimeoutMs ?? 5000,
    requestTimeout: 30_000,
    retry: { initialRetryTime: 300, retries: 8, maxRetryTime: 10_000 },
    logLevel: options.logger ? kafkaLevelFor(options.logger) : logLevel.NOTHING,
  };
  if (options.logger) config.logCreator = kafkaLogCreator(options.logger);
  if (options.ssl !== undefined) config.ssl = options.ssl;
  if (options.sasl !== undefined) config.sasl = options.sasl;
  return new Kafka(config);
}

/**
 * Resolves when a broker answers a metadata request; rejects with kafkajs's error otherwise. `timeoutMs` bounds each
 * request; the overall deadline and the UnreachableError wording are the caller's (cli/preflight.ts).
 */
export async function reachKafka(
  options: Pick<KafkaOptions, 'brokers' | 'ssl' | 'sasl'>,
  timeoutMs = 10_000,
): Promise<void> {
  const config: KafkaConfig = {
    clientId: 'apilog-preflight',
    brokers: [...options.brokers],
    connectionTimeout: Math.min(3000, timeoutMs),
    requestTimeout: timeoutMs,
    retry: { retries: 1, initialRetryTime: 200, maxRetryTime: 1000 },
    logLevel: logLevel.NOTHING,
  };
  if (options.ssl !== undefined) config.ssl = options.ssl;
  if (options.sasl !== undefined) config.sasl = options.sasl;
  const admin = new Kafka(config).admin();
  try {
    await admin.connect();
    await admin.describeCluster();
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}
