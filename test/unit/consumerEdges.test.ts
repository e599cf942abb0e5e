/** The consumer's edges, offline: option validation, backoff, Kafka security from flags/env, ClickHouse error codes, batch bytes. */
import { describe, expect, it } from 'vitest';
import { backoffDelay, retrying } from '../../runtime/backoff.ts';
import { RowsRejectedError, classifyByCode } from '../../clickhouse/errors.ts';
import { classifyClickHouseError } from '../../clickhouse/serverSink.ts';
import { DEFAULT_TUNING, resolveTuning } from '../../consumer/options.ts';
import { PartitionBatch } from '../../consumer/partitionBatch.ts';
import { kafkaSecurity, parseCrashAt } from '../../cli/consume.ts';
import { ApilogError, ConfigError, UnreachableError } from '../../runtime/errors.ts';

describe('consumer options', () => {
  it('fills defaults and rejects unknown, non-integer and conflicting options by name', () => {
    expect(resolveTuning()).toEqual(DEFAULT_TUNING);
    expect(resolveTuning({ maxBatchRows: 10 }).maxBatchRows).toBe(10);
    expect(() => resolveTuning({ maxBatchRow: 1 } as never)).toThrow(/unknown consumer option "maxBatchRow"/);
    expect(() => resolveTuning({ maxBatchAgeMs: 0 })).toThrow(/maxBatchAgeMs must be a positive integer/);
    expect(() => resolveTuning({ maxBatchBytes: 1.5 })).toThrow(ConfigError);
    expect(() => resolveTuning({ sessionTimeoutMs: 6000, heartbeatIntervalMs: 3000 })).toThrow(/heartbeatIntervalMs/);
    expect(() => resolveTuning({ sessionTimeoutMs: 90_000 })).toThrow(/rebalanceTimeoutMs/);
  });
});

describe('backoff', () => {
  it('grows exponentially with full jitter up to the cap', () => {
    const policy = { initialMs: 100, maxMs: 1000, random: () => 0.999 };
    expect([1, 2, 3, 4, 5, 9].map((a) => backoffDelay(policy, a))).toEqual([99, 199, 399, 799, 999, 999]);
    expect(backoffDelay({ ...policy, random: () => 0 }, 5)).toBe(0);
  });

  it('with equal jitter never waits less than half the ceiling (the SDK sender)', () => {
    const policy = { initialMs: 100, maxMs: 1000, jitter: 'equal' as const };
    expect([1, 2, 3, 4, 5].map((a) => backoffDelay({ ...policy, random: () => 0 }, a))).toEqual([50, 100, 200, 400, 500]);
    expect(backoffDelay({ ...policy, random: () => 0.999 }, 9)).toBe(999);
  });

  it('retries retriable errors only, and lets a hook give up', async () => {
    const waits: number[] = [];
    let calls = 0;
    const policy = { initialMs: 10, maxMs: 100, random: () => 0.5, sleep: async (ms: number) => void waits.push(ms) };
    const value = await retrying(policy, async () => {
      if (++calls < 4) throw new UnreachableError('ClickHouse', 'x', 'down');
      return 'ok';
    });
    expect(value).toBe('ok');
    expect(waits).toEqual([5, 10, 20]);
    await expect(retrying(policy, async () => { throw new ApilogError('bad', { retriable: false }); })).rejects.toThrow('bad');
    await expect(
      retrying(policy, async () => { throw new UnreachableError('ClickHouse', 'x', 'down'); }, { between: () => { throw new Error('lost'); } }),
    ).rejects.toThrow('lost');
  });
});

describe('Kafka security from flags and the environment', () => {
  const files: Record<string, Buffer> = { ca: Buffer.from('CA'), cert: Buffer.from('CERT'), key: Buffer.from('KEY') };
  const read = (f: string) => files[f]!;
  it('TLS: plain flag, or CA and client certificate files', () => {
    expect(kafkaSecurity({}, {}, read)).toEqual({});
    expect(kafkaSecurity({ kafkaTls: true }, {}, read)).toEqual({ ssl: true });
    expect(kafkaSecurity({ kafkaCa: 'ca', kafkaCert: 'cert', kafkaKey: 'key' }, {}, read)).toEqual({ ssl: { ca: [files['ca']], cert: files['cert'], key: files['key'] } });
    expect(() => kafkaSecurity({ kafkaCert: 'cert' }, {}, read)).toThrow(/go together/);
  });
  it('SASL: mechanism checked, password only from the environment', () => {
    expect(kafkaSecurity({ kafkaSasl: 'SCRAM-SHA-512', kafkaSaslUsername: 'u' }, { KAFKA_SASL_PASSWORD: 'p' }, read)).toEqual({
      sasl: { mechanism: 'scram-sha-512', username: 'u', password: 'p' },
    });
    expect(kafkaSecurity({}, { KAFKA_SASL_MECHANISM: 'plain', KAFKA_SASL_USERNAME: 'u', KAFKA_SASL_PASSWORD: 'p' }, read).sasl).toEqual({ mechanism: 'plain', username: 'u', password: 'p' });
    expect(() => kafkaSecurity({ kafkaSasl: 'gssapi', kafkaSaslUsername: 'u' }, { KAFKA_SASL_PASSWORD: 'p' }, read)).toThrow(/expected one of/);
    expect(() => kafkaSecurity({ kafkaSasl: 'plain', kafkaSaslUsername: 'u' }, {}, read)).toThrow(/KAFKA_SASL_PASSWORD/);
    expect(() => kafkaSecurity({ kafkaSasl: 'plain' }, { KAFKA_SASL_PASSWORD: 'p' }, read)).toThrow(/username/);
  });
  it('--crash-at parses points and a probability', () => {
    expect(parseCrashAt('after-insert,before-insert:0.5')).toEqual({ points: new Set(['after-insert', 'before-insert']), probability: 0.5 });
    expect(() => parseCrashAt('in-the-middle:0.5')).toThrow(/unknown crash point/);
    expect(() => parseCrashAt('after-insert:2')).toThrow(/probability/);
  });
});

describe('ClickHouse errors', () => {
  it('data errors are rejections, transient states retriable, the rest fatal', () => {
    expect(classifyByCode('Code: 27. DB::Exception: Cannot parse input', 'ch', undefined)).toBeInstanceOf(RowsRejectedError);
    expect(classifyByCode('Code: 376. Cannot parse uuid', 'ch', undefined)).toBeInstanceOf(RowsRejectedError);
    expect(classifyByCode('Code: 252. Too many parts', 'ch', undefined)?.retriable).toBe(true);
    const fatal = classifyByCode('Code: 60. Table default.x does not exist', 'ch', undefined);
    expect(fatal?.retriable).toBe(false);
    expect(fatal).not.toBeInstanceOf(RowsRejectedError);
    expect(classifyByCode('no code here', 'ch', undefined)).toBeUndefined();
  });
  it('the server client: connection errors unreachable, numeric codes classified', () => {
    expect(classifyClickHouseError(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }), 'http://x')).toBeInstanceOf(UnreachableError);
    expect(classifyClickHouseError(Object.assign(new Error('Cannot parse input'), { code: '27' }), 'http://x')).toBeInstanceOf(RowsRejectedError);
    expect((classifyClickHouseError(Object.assign(new Error('Too many parts'), { code: '252' }), 'http://x') as ApilogError).retriable).toBe(true);
  });
});

describe('PartitionBatch', () => {
  it('keeps rows as UTF-8 bytes; excludes, slices and reads rows back', () => {
    const b = new PartitionBatch('t', 2);
    const lines = ['{"a":"x"}\n', '{"a":"é€😀"}\n', `{"a":"${'z'.repeat(100_000)}"}\n`, '{"a":4}\n'];
    lines.forEach((l, i) => b.addRow(10 + i, l, 1));
    b.addStored(14, 1);
    expect(b.id).toBe('t:2:10-14');
    expect(b.nextOffset).toBe(15);
    expect(b.rows).toBe(4);
    expect(b.bytes).toBe(Buffer.byteLength(lines.join('')));
    expect(b.body().body.toString('utf8')).toBe(lines.join(''));
    expect(b.body(new Set([11, 12])).body.toString('utf8')).toBe(lines[0]! + lines[3]!);
    expect(b.rowAt(1).toString('utf8')).toBe(lines[1]);
    const half = b.slice(1, 3);
    expect(half.offsets()).toEqual([11, 12]);
    expect(half.body().body.toString('utf8')).toBe(lines[1]! + lines[2]!);
    expect(b.without(new Set([10])).rows).toBe(3);
  });
});
