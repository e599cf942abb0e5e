/**
 * Finds the local stack for the integration tests: `.stack/env` if it exists, else the local defaults.
 * Every service must answer. Outside CI a missing service is started; under CI=true it fails the run
 * (never a skip): `.ci/run` starts the stack before the tests.
 */
import type { TestProject } from 'vitest/node';
import { LOCAL_CLICKHOUSE_SERVER_URL, LOCAL_KAFKA_BROKERS, LOCAL_SCHEMA_REGISTRY_URL, readStackEnv } from '../../stack/endpoints.ts';
import { SERVICE_NAMES, SERVICES } from '../../stack/services.ts';
import { status, up } from '../../stack/stack.ts';

export interface StackEndpoints {
  brokers: string;
  registry: string;
  clickhouse: string;
}

declare module 'vitest' {
  export interface ProvidedContext {
    stack: StackEndpoints;
  }
}

export default async function setup(project: TestProject): Promise<void> {
  const env = readStackEnv() ?? {};
  const endpoints: StackEndpoints = {
    brokers: process.env['KAFKA_BROKERS'] ?? env.KAFKA_BROKERS ?? LOCAL_KAFKA_BROKERS,
    registry: process.env['SCHEMA_REGISTRY_URL'] ?? env.SCHEMA_REGISTRY_URL ?? LOCAL_SCHEMA_REGISTRY_URL,
    clickhouse: process.env['CLICKHOUSE_URL'] ?? env.CLICKHOUSE_URL ?? LOCAL_CLICKHOUSE_SERVER_URL,
  };
  const local =
    endpoints.brokers === LOCAL_KAFKA_BROKERS &&
    endpoints.registry === LOCAL_SCHEMA_REGISTRY_URL &&
    endpoints.clickhouse === LOCAL_CLICKHOUSE_SERVER_URL;
  if (local) {
    const down = (await status()).filter((s) => !s.healthy).map((s) => s.name);
    if (down.length > 0) {
      if (process.env['CI'] === 'true') {
        throw new Error(
          `integration tests need the local stack, but ${down.map((n) => `${n} (${SERVICES[n].endpoint})`).join(', ')} ` +
            'did not answer; .ci/run starts it with `npm run stack -- up`',
        );
      }
      process.stderr.write(`starting the local stack for the tests: ${down.join(', ')}\n`);
      await up(SERVICE_NAMES.filter((n) => down.includes(n)));
    }
  }
  project.provide('stack', endpoints);
}
