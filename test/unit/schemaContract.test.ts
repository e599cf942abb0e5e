/**
 * The Avro contract and the files that describe the ClickHouse side, offline: versions resolve against each
 * other (and the check does catch an incompatible change), every field is documented, version-1 bytes read as
 * version 2 with the defaults, the migration files parse, and the analysts' page is well formed.
 */
import { describe, expect, it } from 'vitest';
import { API_CALL_SCHEMAS, API_CALL_SCHEMA_V1, API_CALL_SCHEMA_V2, apiCallTypeV1, apiCallTypeV2 } from '../../schemas/apiCall.ts';
import { canRead, checkBackwardTransitive, undocumentedFields } from '../../schemas/compatibility.ts';
import { DEFAULT_RETENTION, loadMigrations, renderStatement, splitStatements } from '../../clickhouse/migrations.ts';
import { forTable, loadAnalystQueries, parseAnalystQueries, parseWindow, windowParams } from '../../schemas/analystQueries.ts';
import { SyntheticEvents } from '../../producer/syntheticEvents.ts';

type Field = { name: string; type: unknown; default?: unknown; doc?: string };
const withFields = (base: string, edit: (fields: Field[]) => Field[]) => {
  const schema = JSON.parse(base) as { fields: Field[] };
  return JSON.stringify({ ...schema, fields: edit(schema.fields) });
};

describe('Avro contract', () => {
  it('documents every field of every version', () => {
    for (const v of API_CALL_SCHEMAS) expect(undocumentedFields(v.text), `v${v.version}`).toEqual([]);
    expect(undocumentedFields(withFields(API_CALL_SCHEMA_V1, (f) => [...f, { name: 'x', type: 'int', default: 0 }]))).toEqual(['x']);
  });

  it('v2 only adds fields to v1, each with a default', () => {
    const v1 = (JSON.parse(API_CALL_SCHEMA_V1) as { fields: Field[] }).fields;
    const v2 = (JSON.parse(API_CALL_SCHEMA_V2) as { fields: Field[] }).fields;
    expect(v2.slice(0, v1.length)).toEqual(v1);
    for (const added of v2.slice(v1.length)) expect(added, added.name).toHaveProperty('default');
  });

  it('every version reads every older one (BACKWARD_TRANSITIVE)', () => {
    const verdicts = checkBackwardTransitive(API_CALL_SCHEMAS);
    expect(verdicts.map((v) => [v.reader, v.writer, v.compatible])).toEqual([[2, 1, true]]);
  });

  it('rejects a new field without a default, a changed type and a removed field without default in the reader', () => {
    const noDefault = withFields(API_CALL_SCHEMA_V1, (f) => [...f, { name: 'region', type: 'string', doc: 'd' }]);
    const retyped = withFields(API_CALL_SCHEMA_V1, (f) => f.map((x) => (x.name === 'status' ? { ...x, type: 'string' } : x)));
    expect(canRead(noDefault, API_CALL_SCHEMA_V1)).toMatchObject({ compatible: false });
    expect(canRead(noDefault, API_CALL_SCHEMA_V1).reason).toMatch(/region/);
    expect(canRead(retyped, API_CALL_SCHEMA_V1)).toMatchObject({ compatible: false });
    // Forward direction: a v1 reader cannot read v2 data only if v2 dropped a field v1 needs; it did not.
    expect(canRead(API_CALL_SCHEMA_V1, API_CALL_SCHEMA_V2)).toEqual({ compatible: true });
    const dropped = withFields(API_CALL_SCHEMA_V1, (f) => f.filter((x) => x.name !== 'api'));
    expect(canRead(API_CALL_SCHEMA_V1, dropped)).toMatchObject({ compatible: false });
  });

  it('reads version-1 bytes as version 2 with the documented defaults', () => {
    const event = new SyntheticEvents({ seed: 5, startMs: Date.UTC(2026, 10, 1) }).next();
    const resolver = apiCallTypeV2.createResolver(apiCallTypeV1);
    const read = apiCallTypeV2.fromBuffer(apiCallTypeV1.toBuffer(event), resolver) as Record<string, unknown>;
    expect(read).toEqual({ ...event, protocol: 'http', region: '', retry_attempt: 0, upstream_latency_us: null, user_agent: null });
  });
});

describe('migration files', () => {
  it('number both series without gaps and split into statements', () => {
    const current = loadMigrations('current');
    expect(current.map((m) => m.version)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(current.map((m) => m.statements.length)).toEqual([1, 2, 2, 2, 1, 4]);
    expect(loadMigrations('legacy').map((m) => [m.version, m.statements.length])).toEqual([[1, 1], [2, 5]]);
  });

  it('splits only at a semicolon that ends a line, dropping comment lines', () => {
    expect(splitStatements('-- a; comment;\nCREATE x (a String DEFAULT \';\');\n\nSELECT 1 ;  \n-- tail')).toEqual([
      "CREATE x (a String DEFAULT ';')",
      'SELECT 1',
    ]);
  });

  it('renders the table name and the retention clauses, and refuses bad values', () => {
    const raw = loadMigrations('current')[0]!.statements[0]!;
    expect(renderStatement(raw, 'db1.calls', DEFAULT_RETENTION)).toMatch(/^CREATE TABLE IF NOT EXISTS db1\.calls\b/);
    expect(renderStatement(raw, 'calls', DEFAULT_RETENTION)).not.toMatch(/\bTTL\b/);
    expect(renderStatement(raw, 'calls', { ...DEFAULT_RETENTION, rawDays: 30 })).toMatch(/TTL toDateTime\(ts\) \+ INTERVAL 30 DAY/);
    expect(() => renderStatement(raw, 'calls; DROP TABLE x', DEFAULT_RETENTION)).toThrow(/invalid table name/);
    expect(() => renderStatement(raw, 'calls', { ...DEFAULT_RETENTION, rawDays: -1 })).toThrow(/whole number of days/);
    expect(() => renderStatement('SELECT {nope_ttl}', 'calls', DEFAULT_RETENTION)).toThrow(/unknown placeholder/);
  });
});

describe("the analysts' page (docs/queries.sql)", () => {
  it('has every question in a rollup and a raw version, each binding from and to', () => {
    const queries = loadAnalystQueries();
    expect(queries.map((q) => q.name)).toEqual(['failing_now', 'p99_by_minute', 'slowest_routes', 'top_clients', 'error_spikes', 'hourly_trend']);
    for (const q of queries) {
      expect(q.sql.rollup, q.name).toMatch(/\bapi_calls_(1m|1h|clients_1h)\b/);
      expect(q.sql.raw, q.name).toMatch(/\bFROM api_calls\b/);
      for (const sql of Object.values(q.sql)) expect(sql).toMatch(/\{from:DateTime\}[\s\S]*\{to:DateTime\}/);
    }
  });

  it('renames the tables, parses windows and rejects a half-written page', () => {
    expect(forTable('FROM api_calls JOIN api_calls_1m USING api_calls_x', 't9')).toBe('FROM t9 JOIN t9_1m USING api_calls_x');
    expect(parseWindow('15m')).toBe(900_000);
    expect(parseWindow('7d')).toBe(7 * 86_400_000);
    expect(() => parseWindow('0h')).toThrow(/positive/);
    expect(windowParams(3_600_000, Date.UTC(2026, 10, 28, 10, 30, 45))).toEqual({ from: '2026-11-28 09:31:00', to: '2026-11-28 10:31:00' });
    expect(windowParams(3_600_000, Date.UTC(2026, 10, 28, 10, 30, 0))).toEqual({ from: '2026-11-28 09:31:00', to: '2026-11-28 10:31:00' });
    expect(() => parseAnalystQueries('-- name: x\n-- question: q\n-- window: 1h\n-- source: raw\nSELECT 1;\n')).toThrow(/both a rollup and a raw/);
  });
});
