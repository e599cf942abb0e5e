/**
 * Before a command does anything, it checks that Kafka, the registry and ClickHouse answer, all at once,
 * each within a deadline: a bad endpoint becomes one line naming the component and the address.
 */
import { UnreachableError, describeError, type Component } from '../runtime/errors.ts';
import { reachKafka } from '../runtime/kafka.ts';
import type { SchemaRegistryClient } from '../schemas/registry.ts';
import type { Sink } from '../consumer/sink.ts';

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
    if (error instanceof UnreachableError) throw error;
    throw new UnreachableError(component, address, describeError(error), error);
  } finally {
    clearTimeout(timer);
  }
}

export interface PreflightTargets {
  readonly brokers?: readonly string[];
  readonly registry?: SchemaRegistryClient;
  readonly sink?: Sink;
}

/** Resolves when every given component answers; otherwise rejects with the first UnreachableError (Kafka, registry, ClickHouse). */
export async function preflight(targets: PreflightTargets, timeoutMs = 10_000): Promise<void> {
  const checks: Promise<void>[] = [];
  if (targets.brokers) {
    const brokers = targets.brokers;
    checks.push(within('Kafka', brokers.join(','), timeoutMs, () => reachKafka({ brokers }, timeoutMs)));
  }
  if (targets.registry) {
    const registry = targets.registry;
    checks.push(within('schema registry', registry.url, timeoutMs, () => registry.ping()));
  }
  if (targets.sink) {
    const sink = targets.sink;
    checks.push(within('ClickHouse', sink.address, timeoutMs, () => sink.ping()));
  }
  const results = await Promise.allSettled(checks);
  for (const r of results) if (r.status === 'rejected') throw r.reason;
}
