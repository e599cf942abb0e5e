/**
 * `npx tsx bench/perfStack.ts up|down|env`: private Kafka, registry and ClickHouse server for benchmarks, on their own
 * ports and data directories (ids kafka-perf, registry-perf, clickhouse-perf), so a benchmark never loads or depends
 * on the shared stack. `env` prints the endpoints as KAFKA_BROKERS=… lines for `env $(…) npm run bench:consumer`.
 */
import { clickhouseService, kafkaService, registryService, type Service } from '../stack/services.ts';
import { startService, stopService } from '../stack/stack.ts';

export const PERF_SERVICES: readonly Service[] = [
  kafkaService({ id: 'kafka-perf', port: 39092, controllerPort: 39093 }),
  registryService({ id: 'registry-perf', port: 38081 }),
  clickhouseService({ id: 'clickhouse-perf', httpPort: 38123, tcpPort: 39010 }),
];

export function perfEnv(): Record<'KAFKA_BROKERS' | 'SCHEMA_REGISTRY_URL' | 'CLICKHOUSE_URL', string> {
  const [kafka, registry, clickhouse] = PERF_SERVICES;
  return { KAFKA_BROKERS: kafka!.endpoint, SCHEMA_REGISTRY_URL: registry!.endpoint, CLICKHOUSE_URL: clickhouse!.endpoint };
}

async function main(command: string | undefined): Promise<void> {
  if (command === 'up') {
    await Promise.all(PERF_SERVICES.map((s) => startService(s)));
  } else if (command === 'down') {
    for (const s of [...PERF_SERVICES].reverse()) {
      const pid = await stopService(s);
      process.stderr.write(`  ${s.id}: ${pid === undefined ? 'not running' : `stopped (pid ${pid})`}\n`);
    }
  } else if (command !== 'env') {
    throw new Error('usage: bench/perfStack.ts up|down|env');
  }
  for (const [key, value] of Object.entries(perfEnv())) process.stdout.write(`${key}=${value}\n`);
}

main(process.argv[2]).catch((error: unknown) => {
  process.stderr.write(`perfStack: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
