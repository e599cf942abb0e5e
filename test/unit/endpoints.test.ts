import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { resolveEndpoints } from '../../cli/endpoints.ts';
import { ConfigError } from '../../runtime/errors.ts';
import { LOCAL_CHDB_DIR, LOCAL_KAFKA_BROKERS, LOCAL_SCHEMA_REGISTRY_URL } from '../../stack/endpoints.ts';
import { bindLiterals } from '../../clickhouse/serverSink.ts';

const VARS = ['KAFKA_BROKERS', 'SCHEMA_REGISTRY_URL', 'CLICKHOUSE_URL', 'APILOG_TOPIC'] as const;

describe('endpoint options', () => {
  const saved: Record<string, string | undefined> = {};
  beforeEach(() => {
    for (const v of VARS) {
      saved[v] = process.env[v];
      delete process.env[v];
    }
  });
  afterEach(() => {
    for (const v of VARS) {
      if (saved[v] === undefined) delete process.env[v];
      else process.env[v] = saved[v];
    }
  });

  it('fall back to the local stack, and say so', () => {
    const e = resolveEndpoints({});
    expect(e.brokers).toEqual([LOCAL_KAFKA_BROKERS]);
    expect(e.registry).toBe(LOCAL_SCHEMA_REGISTRY_URL);
    expect(e.clickhouse).toBe(LOCAL_CHDB_DIR);
    expect(e.topic).toBe('api-calls');
    expect(e.defaulted).toEqual({ brokers: true, registry: true, clickhouse: true });
  });

  it('take the environment over the defaults and flags over the environment', () => {
    process.env['KAFKA_BROKERS'] = 'k1:9092, k2:9093';
    process.env['SCHEMA_REGISTRY_URL'] = 'http://reg:8081/';
    process.env['CLICKHOUSE_URL'] = 'https://ch.example:8443';
    process.env['APILOG_TOPIC'] = 'env-topic';
    const fromEnv = resolveEndpoints({});
    expect(fromEnv.brokers).toEqual(['k1:9092', 'k2:9093']);
    expect(fromEnv.registry).toBe('http://reg:8081');
    expect(fromEnv.clickhouse).toBe('https://ch.example:8443');
    expect(fromEnv.topic).toBe('env-topic');
    expect(fromEnv.defaulted).toEqual({ brokers: false, registry: false, clickhouse: false });
    const fromFlags = resolveEndpoints({ brokers: 'f:1', registry: 'http://f', clickhouse: '/data/ch', topic: 'flag-topic' });
    expect(fromFlags.brokers).toEqual(['f:1']);
    expect(fromFlags.clickhouse).toBe('/data/ch');
    expect(fromFlags.topic).toBe('flag-topic');
  });

  it('reject bad values with a message naming the option', () => {
    const cases: [Parameters<typeof resolveEndpoints>[0], string][] = [
      [{ brokers: 'no-port' }, '--brokers'],
      [{ registry: 'ftp://x' }, '--registry'],
      [{ clickhouse: 'ftp://x' }, '--clickhouse'],
      [{ topic: 'bad topic!' }, '--topic'],
    ];
    for (const [flags, option] of cases) {
      expect(() => resolveEndpoints(flags)).toThrowError(ConfigError);
      expect(() => resolveEndpoints(flags)).toThrowError(option);
    }
  });
});

describe('bindLiterals (query parameters for servers before 19.x)', () => {
  it('quotes strings with ClickHouse escaping and keeps numbers', () => {
    expect(bindLiterals("SELECT {a:String}, {n:UInt32}", { a: "it's \\ done", n: 7 })).toBe("SELECT 'it\\'s \\\\ done', 7");
  });

  it('refuses unbound or non-finite parameters', () => {
    expect(() => bindLiterals('SELECT {a:String}', {})).toThrowError('not bound');
    expect(() => bindLiterals('SELECT {n:Float64}', { n: Number.NaN })).toThrowError('finite');
  });
});
