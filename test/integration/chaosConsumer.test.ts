/**
 * A shorter run of the crash test (test/chaos/chaos.ts, `npm run chaos`) against both sinks (integration): consumer
 * processes SIGKILLed at random moments and at crash points, the ClickHouse server and the broker SIGKILLed and
 * restarted; then every event must be in ClickHouse exactly once. Runs on PRIVATE Kafka and ClickHouse instances
 * (ports 19092 and 18123) so the shared stack is never disturbed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHAOS_CLICKHOUSE, CHAOS_KAFKA, runChaos, type ChaosOptions } from '../chaos/chaos.ts';
import { startService, stopService } from '../../stack/stack.ts';
import { stack, uniqueName } from './pipeline.ts';

const base = (): Omit<ChaosOptions, 'events' | 'consumers' | 'kills' | 'sink' | 'topic' | 'produceSeconds' | 'restartClickHouse' | 'restartKafka'> => ({
  partitions: 6,
  seed: Date.now() % 100_000,
  timeoutSeconds: 120,
  registry: stack().registry,
  say: (line) => process.stderr.write(`${line}\n`),
});

describe('chaos: kill consumers, ClickHouse and Kafka while events flow (integration)', () => {
  beforeAll(async () => {
    await Promise.all([startService(CHAOS_KAFKA, { verbose: false }), startService(CHAOS_CLICKHOUSE, { verbose: false })]);
  }, 180_000);

  afterAll(async () => {
    await stopService(CHAOS_CLICKHOUSE, 'SIGTERM');
    await stopService(CHAOS_KAFKA, 'SIGTERM');
  }, 60_000);

  it('server sink: 2 consumers, kills, a ClickHouse restart and a broker restart lose and double nothing', async () => {
    const result = await runChaos({
      ...base(), events: 12_000, consumers: 2, kills: 3, sink: 'server', topic: uniqueName('chaos-server'),
      produceSeconds: 6, restartClickHouse: true, restartKafka: true,
    });
    process.stderr.write(`${JSON.stringify(result)}\n`);
    expect(result.details['clickhouseRestarts']).toBe(1);
    // The restart was felt: inserts or stored-offset reads failed and were retried, not skipped.
    expect(Number(result.details['insertRetries']) + Number(result.details['storedOffsetRetries'])).toBeGreaterThan(0);
    expect(result.details['kafkaRestarts']).toBe(1);
    expect(result.kills).toBeGreaterThanOrEqual(3);
    expect(result.details['consumerExits']).toBe(0);
    expect({ rows: result.rows, unique: result.unique, missing: result.missing, duplicates: result.duplicates }).toEqual({
      rows: 12_000, unique: 12_000, missing: 0, duplicates: 0,
    });
  }, 180_000);

  it('embedded sink (chdb): one consumer killed and restarted repeatedly loses and doubles nothing', async () => {
    const result = await runChaos({
      ...base(), events: 8000, consumers: 1, kills: 3, sink: 'embedded', topic: uniqueName('chaos-embedded'),
      produceSeconds: 5, restartClickHouse: false, restartKafka: false,
    });
    process.stderr.write(`${JSON.stringify(result)}\n`);
    expect(result.kills).toBeGreaterThanOrEqual(3);
    expect(result.details['consumerExits']).toBe(0);
    expect({ rows: result.rows, unique: result.unique, missing: result.missing, duplicates: result.duplicates }).toEqual({
      rows: 8000, unique: 8000, missing: 0, duplicates: 0,
    });
  }, 180_000);
});
