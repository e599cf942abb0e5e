/**
 * A shorter run of the crash test (test/chaos/chaos.ts, `npm run chaos`) against both sinks (integration): consumer
 * processes SIGKILLed at random moments and at crash points, ClickHouse frozen past the insert and rebalance timeouts
 * while a consumer is paused and another killed, a consumer frozen past its session timeout, the ClickHouse server
 * and the broker SIGKILLed and restarted; undecodable records among the events. Then every offset must be stored once
 * or dead-lettered, and (embedded engine, current tables) every rollup must equal the raw rows' aggregates. Runs on
 * PRIVATE Kafka and ClickHouse instances (ports 19092 and 18123) so the shared stack is never disturbed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHAOS_CLICKHOUSE, CHAOS_KAFKA, chaosPassed, runChaos, type ChaosOptions } from '../chaos/chaos.ts';
import { startService, stopService } from '../../stack/stack.ts';
import { stack, uniqueName } from './pipeline.ts';

const base = (): Pick<ChaosOptions, 'partitions' | 'seed' | 'timeoutSeconds' | 'registry' | 'say' | 'rebalanceTimeoutMs'> => ({
  partitions: 6,
  seed: Date.now() % 100_000,
  timeoutSeconds: 180,
  // Stalls last 4 s longer than this: short, for CI.
  rebalanceTimeoutMs: 10_000,
  registry: stack().registry,
  say: (line) => process.stderr.write(`${line}\n`),
});

describe('chaos: kill, freeze and restart consumers, ClickHouse and Kafka while events flow (integration)', () => {
  beforeAll(async () => {
    await Promise.all([startService(CHAOS_KAFKA, { verbose: false }), startService(CHAOS_CLICKHOUSE, { verbose: false })]);
  }, 180_000);

  afterAll(async () => {
    await stopService(CHAOS_CLICKHOUSE, 'SIGTERM');
    await stopService(CHAOS_KAFKA, 'SIGTERM');
  }, 60_000);

  it('server sink: 2 consumers, kills, a stall with a pause and a kill inside it, a pause, restarts: nothing lost or doubled', async () => {
    const options: ChaosOptions = {
      ...base(), events: 12_000, consumers: 2, kills: 3, stalls: 1, pauses: 2, sink: 'server', topic: uniqueName('chaos-server'),
      produceSeconds: 8, restartClickHouse: true, restartKafka: true,
    };
    const result = await runChaos(options);
    process.stderr.write(`${JSON.stringify(result)}\n`);
    // The restarts happened (new pids, the server's uptime) and were felt: requests failed and were retried.
    expect(result.details['clickhouseRestarts']).toBe(1);
    expect(result.details['kafkaRestarts']).toBe(1);
    expect(Number(result.details['insertRetries']) + Number(result.details['storedOffsetRetries'])).toBeGreaterThan(0);
    expect(result.details['consumerExits'], JSON.stringify(result.details['exitReasons'])).toBe(0);
    expect({ stalls: result.stalls, pauses: result.pauses }).toEqual({ stalls: 1, pauses: 2 });
    expect(result.kills).toBeGreaterThanOrEqual(3);
    expect({ rows: result.rows, unique: result.unique, missing: result.missing, duplicates: result.duplicates, dead_letters_missing: result.dead_letters_missing }).toEqual({
      rows: 12_000, unique: 12_000, missing: 0, duplicates: 0, dead_letters_missing: 0,
    });
    expect(result.rollup_mismatch).toBeNull(); // 18.16: no rollups
    expect(chaosPassed(result, options)).toBe(true);
  }, 400_000);

  it('embedded sink (chdb): one consumer killed, frozen and restarted repeatedly: raw rows and rollups exact', async () => {
    const options: ChaosOptions = {
      ...base(), events: 8000, consumers: 1, kills: 3, stalls: 1, pauses: 0, sink: 'embedded', topic: uniqueName('chaos-embedded'),
      produceSeconds: 6, restartClickHouse: false, restartKafka: false,
    };
    const result = await runChaos(options);
    process.stderr.write(`${JSON.stringify(result)}\n`);
    expect(result.kills).toBeGreaterThanOrEqual(3);
    expect(result.stalls).toBe(1);
    expect(result.details['consumerExits'], JSON.stringify(result.details['exitReasons'])).toBe(0);
    expect({ rows: result.rows, unique: result.unique, missing: result.missing, duplicates: result.duplicates, rollup_mismatch: result.rollup_mismatch }).toEqual({
      rows: 8000, unique: 8000, missing: 0, duplicates: 0, rollup_mismatch: 0,
    });
    expect(chaosPassed(result, options)).toBe(true);
  }, 400_000);
});
