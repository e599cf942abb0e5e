/** The local stack's own promises: idempotent `up`, a correct .stack/env, health as seen by `status`. */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ENV_FILE, LOCAL_CLICKHOUSE_SERVER_URL, LOCAL_KAFKA_BROKERS, LOCAL_SCHEMA_REGISTRY_URL, readStackEnv } from '../../stack/endpoints.ts';
import { status, up } from '../../stack/stack.ts';

describe('local stack (integration)', () => {
  it('up is idempotent: running services keep their pids, and .stack/env names the endpoints', async () => {
    const before = await status();
    expect(before.every((s) => s.healthy && s.pid !== undefined)).toBe(true);
    const t0 = Date.now();
    await up(undefined, { verbose: false });
    expect(Date.now() - t0).toBeLessThan(15_000);
    const after = await status();
    expect(after.map((s) => s.pid)).toEqual(before.map((s) => s.pid));
    expect(readStackEnv()).toEqual({
      KAFKA_BROKERS: LOCAL_KAFKA_BROKERS,
      SCHEMA_REGISTRY_URL: LOCAL_SCHEMA_REGISTRY_URL,
      CLICKHOUSE_URL: LOCAL_CLICKHOUSE_SERVER_URL,
    });
    expect(readFileSync(ENV_FILE, 'utf8')).toMatch(/^KAFKA_BROKERS=127\.0\.0\.1:9092$/m);
  });
});
