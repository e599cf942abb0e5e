/**
 * The RowBinary transcoder beyond the API-call schema, on the embedded engine: a writer schema with every Avro type
 * (boolean, int, long, float, double, string, bytes, enum, fixed-free records, arrays, maps, unions with null first or
 * second) into a table with the column types the transcoder writes (Bool, Int8…UInt64, Float32/64, String,
 * LowCardinality, FixedString, UUID, Enum8, DateTime, DateTime64(3|6), Map, Nullable) and columns the schema lacks
 * (literal defaults, NULL, an expression). 500 random records go in as JSON lines and as RowBinary; every column of
 * every row must read back the same, and records out of a column's range must be refused by both.
 */
import avro from 'avsc';
import { describe, expect, it } from 'vitest';
import { ClickHouseRows } from '../../consumer/clickhouseRows.ts';
import { PartitionBatch } from '../../consumer/partitionBatch.ts';
import type { RowEncoder } from '../../consumer/rowBinary.ts';
import type { RowFormat } from '../../clickhouse/sink.ts';
import { TableWriter } from '../../consumer/tableWriter.ts';
import { prng } from '../../producer/syntheticEvents.ts';
import { DecodeError } from '../../runtime/errors.ts';
import { frame } from '../../schemas/wire.ts';
import { embeddedClickHouse } from './embeddedClickHouse.ts';

const sink = embeddedClickHouse('apilog-rowbinary-types-');

const type = avro.Type.forSchema({
  type: 'record',
  name: 'Everything',
  fields: [
    { name: 'flag', type: 'boolean' },
    { name: 'i32', type: 'int' },
    { name: 'i8', type: 'int' },
    { name: 'u16', type: 'int' },
    { name: 'i64', type: 'long' },
    { name: 'u64', type: 'long' },
    { name: 'f32', type: 'float' },
    { name: 'f64', type: 'double' },
    { name: 'd32', type: 'double' },
    { name: 'text', type: 'string' },
    { name: 'low', type: 'string' },
    { name: 'fixed8', type: 'string' },
    { name: 'id', type: 'string' },
    { name: 'kind', type: { type: 'enum', name: 'Kind', symbols: ['A', 'B', 'C'] } },
    { name: 'kind_enum', type: 'Kind' },
    { name: 'level', type: 'string' },
    { name: 'maybe', type: ['null', 'string'] },
    { name: 'maybe_last', type: ['string', 'null'] },
    { name: 'maybe_long', type: ['null', 'long'] },
    { name: 'maybe_double', type: ['null', 'double'] },
    { name: 'maybe_kind', type: ['null', 'Kind'] },
    { name: 'tags', type: { type: 'map', values: 'string' } },
    { name: 'tags_text', type: { type: 'map', values: 'string' } },
    { name: 'counts', type: { type: 'map', values: 'long' } },
    { name: 'list', type: { type: 'array', items: 'string' } },
    { name: 'inner', type: { type: 'record', name: 'Inner', fields: [{ name: 'x', type: 'int' }, { name: 'y', type: ['null', 'string'] }] } },
    { name: 'raw', type: 'bytes' },
    { name: 'ts', type: 'long' },
    { name: 'ts_seconds', type: 'long' },
    { name: 'ts_micros', type: 'long' },
  ],
}) as unknown as avro.Type;

const TABLE = `(
  flag Bool, i32 Int32, i8 Int8, u16 UInt16, i64 Int64, u64 UInt64, f32 Float32, f64 Float64, d32 Float32,
  text String, low LowCardinality(String), fixed8 FixedString(8), id UUID, kind String, kind_enum Enum8('A' = 1, 'B' = 2, 'C' = -3),
  level Enum16('debug' = 100, 'info' = 200, 'error' = 3000),
  maybe Nullable(String), maybe_last LowCardinality(Nullable(String)), maybe_long Nullable(Int64), maybe_double Nullable(Float64),
  maybe_kind Nullable(String), tags Map(LowCardinality(String), String), tags_text String, counts String, list String,
  inner String, raw String, ts DateTime64(3, 'UTC'), ts_seconds DateTime('UTC'), ts_micros DateTime64(6, 'UTC'),
  absent_text String DEFAULT 'none', absent_number UInt8 DEFAULT 7, absent_null Nullable(String), absent_zero Int32,
  absent_now DateTime DEFAULT now(), doubled UInt64 MATERIALIZED u64 * 2,
  _topic LowCardinality(String), _partition UInt32, _offset UInt64
) ENGINE = MergeTree ORDER BY _offset`;

function records(count: number, seed: number): Record<string, unknown>[] {
  const r = prng(seed);
  const int = (lo: number, hi: number) => lo + Math.floor(r() * (hi - lo + 1));
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  const texts = ['', 'plain', 'a"b\\c', 'new\nline', 'nul\u0000', 'émoji 🚀', 'two\n\nlines', 'x'.repeat(200)];
  const hex = () => Math.floor(r() * 0x10000).toString(16).padStart(4, '0');
  const out: Record<string, unknown>[] = [];
  for (let i = 0; i < count; i++) {
    const ms = int(1_000_000_000_000, 4_000_000_000_000);
    out.push({
      flag: r() < 0.5,
      i32: int(-2_147_483_648, 2_147_483_647),
      i8: int(-128, 127),
      u16: int(0, 65_535),
      i64: int(-9_007_199_254_740_990, 9_007_199_254_740_990),
      u64: int(0, 9_007_199_254_740_990),
      f32: Math.fround((r() - 0.5) * 1e6),
      f64: (r() - 0.5) * 1e12,
      d32: (r() - 0.5) * 1e3,
      text: pick(texts),
      low: pick(['GET', 'POST', 'PUT']),
      fixed8: pick(['', 'abc', 'abcdefgh']),
      id: `${hex()}${hex()}-${hex()}-${hex()}-${hex()}-${hex()}${hex()}${hex()}`,
      kind: pick(['A', 'B', 'C']),
      kind_enum: pick(['A', 'B', 'C']),
      level: pick(['debug', 'info', 'error']),
      maybe: r() < 0.3 ? null : pick(texts),
      maybe_last: r() < 0.3 ? null : pick(texts),
      maybe_long: r() < 0.3 ? null : int(-1e12, 1e12),
      maybe_double: r() < 0.3 ? null : (r() - 0.5) * 1e6,
      maybe_kind: r() < 0.3 ? null : pick(['A', 'B', 'C']),
      tags: r() < 0.2 ? {} : { env: pick(texts), 'key with space': pick(texts) },
      tags_text: r() < 0.2 ? {} : { q: pick(texts), p: 'v' },
      counts: { a: int(-5, 5), b: int(0, 1e9) },
      list: r() < 0.2 ? [] : [pick(texts), pick(texts)],
      inner: { x: int(-100, 100), y: r() < 0.5 ? null : pick(texts) },
      raw: Buffer.from([int(0, 255), int(0, 255), 10, 10]),
      ts: ms,
      ts_seconds: ms,
      ts_micros: ms,
    });
  }
  return out;
}

async function writerFor(table: string, format: RowFormat): Promise<RowEncoder> {
  const writer = new TableWriter({
    describe: () => sink.describe(table), rowBinary: format === 'RowBinary', format: format === 'RowBinary' ? 'JSONCompactEachRow' : format, schemas: { url: 'test', cachedType: () => type },
  });
  await writer.start();
  return writer.encoderFor(frame(7, Buffer.alloc(0)));
}

function encodeAll(encoder: RowEncoder, values: readonly Buffer[]): { batch: PartitionBatch; refused: (string | undefined)[] } {
  const batch = new PartitionBatch('types', 1);
  const refused = values.map((value, offset) => {
    try {
      batch.addEncoded(offset, 0, encoder, value, 1, String(offset));
      return undefined;
    } catch (error) {
      if (!(error instanceof DecodeError)) throw error;
      return error.reason;
    }
  });
  return { batch, refused };
}

async function readAll(table: string): Promise<string[]> {
  const columns = (await sink.describe(table)).filter((c) => c.name !== 'absent_now').map((c) => (c.type.startsWith('Map(') ? `mapSort(${c.name}) AS ${c.name}` : c.name));
  const rows = await sink.query<Record<string, unknown>>(`SELECT ${columns.join(', ')}, doubled FROM ${table} ORDER BY _offset`);
  return rows.map((row) => JSON.stringify(row));
}

describe('RowBinary transcoder: every Avro type and every column type it writes (unit, embedded ClickHouse)', () => {
  for (const json of ['JSONCompactEachRow', 'JSONEachRow'] as const) {
    it(`500 random records read back column for column as through ${json}`, async () => {
      const [a, b] = [`types_${json.toLowerCase()}`, `types_rowbinary_vs_${json.toLowerCase()}`];
      for (const t of [a, b]) await sink.command(`CREATE TABLE ${t} ${TABLE}`);
      const values = records(500, json.length).map((record) => frame(7, type.toBuffer(record)));
      const binary = await writerFor(b, 'RowBinary');
      expect(binary.layout.format).toBe('RowBinary');
      // Columns the schema lacks with a literal default are written; the expression (now()) and MATERIALIZED are not.
      expect(binary.layout.columns).toEqual(expect.arrayContaining(['absent_text', 'absent_number', 'absent_null', 'absent_zero']));
      expect(binary.layout.columns).not.toContain('absent_now');
      expect(binary.layout.columns).not.toContain('doubled');
      for (const [table, encoder] of [[a, await writerFor(a, json)], [b, binary]] as const) {
        const { batch, refused } = encodeAll(encoder, values);
        expect(refused.filter((x) => x !== undefined)).toEqual([]);
        await new ClickHouseRows(sink, table).insert(batch.body().body, batch.rows, batch.layout);
      }
      const [x, y] = [await readAll(a), await readAll(b)];
      expect(x).toHaveLength(500);
      for (let i = 0; i < x.length; i++) expect(y[i], `row ${i}`).toBe(x[i]);
      const first = JSON.parse(y[0]!) as Record<string, unknown>;
      expect([first['absent_text'], first['absent_number'], first['absent_null'], first['absent_zero']]).toEqual(['none', 7, null, 0]);
    });
  }

  it('refuses what does not fit, like the JSON path: out-of-range integers, NaN, negative times, unknown enum text', async () => {
    await sink.command(`CREATE TABLE types_refuse ${TABLE}`);
    const [good] = records(1, 3) as [Record<string, unknown>];
    const bad: Record<string, unknown>[] = [
      { ...good, i8: 128 },
      { ...good, i8: -129 },
      { ...good, u16: -1 },
      { ...good, u16: 65_536 },
      { ...good, u64: -1 },
      { ...good, f64: Number.NaN },
      { ...good, f32: Number.POSITIVE_INFINITY },
      { ...good, ts: -1 },
      { ...good, ts_seconds: -1000 },
    ];
    const values = bad.map((record) => frame(7, type.toBuffer(record)));
    const json = encodeAll(await writerFor('types_refuse', 'JSONCompactEachRow'), values).refused;
    const binary = encodeAll(await writerFor('types_refuse', 'RowBinary'), values).refused;
    expect(binary).toEqual(json);
    expect(binary.every((r) => r === 'does-not-fit-table')).toBe(true);
    // Text for an Enum column: the JSON path leaves it to ClickHouse (which rejects the insert); RowBinary refuses it.
    const level = encodeAll(await writerFor('types_refuse', 'RowBinary'), [frame(7, type.toBuffer({ ...good, level: 'warning' }))]).refused;
    expect(level).toEqual(['does-not-fit-table']);
  });
});

describe('RowBinary rows encoded before a column changed type (unit, embedded ClickHouse)', () => {
  it('are read with the types they were encoded for, and converted by the insert', async () => {
    await sink.command(`CREATE TABLE types_altered ${TABLE}`);
    const values = records(50, 11).map((record) => frame(7, type.toBuffer(record)));
    const encoder = await writerFor('types_altered', 'RowBinary');
    expect(encoder.layout.types?.[encoder.layout.columns.indexOf('u16')]).toBe('UInt16');
    const { batch } = encodeAll(encoder, values);
    // Rows wait in the batch; meanwhile the table changes (the JSON path's text would be parsed as the new type).
    await sink.command('ALTER TABLE types_altered MODIFY COLUMN u16 Float64, MODIFY COLUMN i8 String');
    await new ClickHouseRows(sink, 'types_altered').insert(batch.body().body, batch.rows, batch.layout);
    const rows = await sink.query<{ u16: number; i8: string }>('SELECT u16, i8 FROM types_altered ORDER BY _offset');
    const expected = records(50, 11).map((r) => ({ u16: r['u16'], i8: String(r['i8']) }));
    expect(rows).toEqual(expected);
  });
});
