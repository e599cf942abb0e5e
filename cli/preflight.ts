/**
 * Before a command does anything, it checks that Kafka, the registry and ClickHouse answer, all at once,
 * each within a deadline: a bad endpoint becomes one line naming the component and the address.
 */
import { ConfigError, UnreachableError, describeError, type Component } from '../runtime/errors.ts';
import { reachKafka, type KafkaTarget } from '../runtime/kafka.ts';
import type { SchemaRegistryClient } from '../schemas/registry.ts';
import { clickHouseCode } from '../clickhouse/errors.ts';
import type { Sink } from '../clickhouse/sink.ts';

async function within(component: Component, address: string, ms: number, check: () => Promise<void>): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      check(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new UnreachableError(component, address, `no answer within ${ms / 1000} s`)), ms);
      }),
    ]);
  } catch (error) {
    // Unreachable keeps its wording; settings that cannot work (credentials refused) must not be waited on.
    if (error instanceof UnreachableError || error instanceof ConfigError) throw error;
    throw new UnreachableError(component, address, describeError(error), error);
  } finally {
    clearTimeout(timer);
  }
}

export interface PreflightTargets {
  readonly brokers?: readonly string[];
  /** Kafka TLS and SASL: the very settings the command's own Kafka client gets (kafkaSecurity in consume.ts). */
  readonly ssl?: KafkaTarget['ssl'];
  readonly sasl?: KafkaTarget['sasl'];
  readonly registry?: SchemaRegistryClient;
  readonly sink?: Sink;
}

/**
 * Resolves when every given component answers; otherwise rejects with the first UnreachableError (Kafka, registry,
 * ClickHouse), or with the ConfigError of a broker that refused the TLS/SASL settings.
 */
export async function preflight(targets: PreflightTargets, timeoutMs = 10_000): Promise<void> {
  const checks: Promise<void>[] = [];
  if (targets.brokers) {
    const kafka: KafkaTarget = { brokers: targets.brokers, ssl: targets.ssl, sasl: targets.sasl };
    checks.push(within('Kafka', kafka.brokers.join(','), timeoutMs, () => reachKafka(kafka, timeoutMs)));
  }
  if (targets.registry) {
    const registry = targets.registry;
    checks.push(within('schema registry', registry.url, timeoutMs, () => registry.ping()));
  }
  if (targets.sink) {
    const sink = targets.sink;
    checks.push(within('ClickHouse', sink.address, timeoutMs, () => clickhouseAnswers(sink)));
  }
  const results = await Promise.allSettled(checks);
  for (const r of results) if (r.status === 'rejected') throw r.reason;
}

/** ClickHouse's codes for credentials it refuses: UNKNOWN_USER, WRONG_PASSWORD, REQUIRED_PASSWORD, AUTHENTICATION_FAILED. */
const REFUSED_CREDENTIALS = new Set([192, 193, 194, 516]);

/**
 * ClickHouse answers /ping without credentials: a query tells whether it takes ours. Refused credentials are a
 * ConfigError (the same request never passes), not something to wait for.
 */
async function clickhouseAnswers(sink: Sink): Promise<void> {
  await sink.ping();
  try {
    await sink.query('SELECT 1');
  } catch (error) {
    const code = clickHouseCode(describeError(error));
    if (code !== undefined && REFUSED_CREDENTIALS.has(code)) {
      throw new ConfigError(`ClickHouse at ${sink.address} refused the credentials (code ${code}): set CLICKHOUSE_USER and CLICKHOUSE_PASSWORD`, { cause: error });
    }
    throw error;
  }
}
