/**
 * The RowBinary transcoder (consumer/rowBinary.ts) against the JSON row writer it replaces on the hot path, on the
 * embedded engine (chdb, a real ClickHouse): the same records go into two copies of a table, one as JSON lines and
 * one as RowBinary, and every column of every row must read back the same; a record one path refuses, the other must
 * refuse for the same reason. Run on the current table (UUID, DateTime64, LowCardinality, Map) and on the legacy one
 * (18.16's: epoch-ms UInt64, attributes as JSON text, a MATERIALIZED column), with version-1 and version-2 writers.
 */
import type { Type } from 'avsc';
import { describe, expect, it } from 'vitest';
import { ClickHouseRows } from '../../consumer/clickhouseRows.ts';
import { decodeFramed } from '../../consumer/decoder.ts';
import { PartitionBatch } from '../../consumer/partitionBatch.ts';
import { compileRowBinary, type RowEncoder } from '../../consumer/rowBinary.ts';
import { RowWriter } from '../../consumer/rowWriter.ts';
import type { TableColumn } from '../../consumer/sink.ts';
import { TableWriter } from '../../consumer/tableWriter.ts';
import { prng, SyntheticEvents } from '../../producer/syntheticEvents.ts';
import { apiCallTypeV1, apiCallTypeV2, type ApiCallEvent, type ApiCallEventV2 } from '../../schemas/apiCall.ts';
import { migrate } from '../../schemas/migrations.ts';
import { frame } from '../../schemas/wire.ts';
import { DecodeError } from '../../runtime/errors.ts';
import { embeddedClickHouse } from './embeddedClickHouse.ts';

const sink = embeddedClickHouse('apilog-rowbinary-');
const TOPIC = 'api-calls.rb';

const schemas = new Map<number, Type>([
  [1, apiCallTypeV1],
  [2, apiCallTypeV2],
]);
const framed = (id: number, record: object) => frame(id, schemas.get(id)!.toBuffer(record));

/**
 * Awkward but valid values: quotes, backslashes, control characters, NUL, emoji, empty strings, extremes, and "\n\n" in
 * text and in binary (2570 is 0x0a0a), which chdb's inline raw insert would take for the end of the data.
 */
function awkward(base: ApiCallEvent, i: number): ApiCallEvent {
  const texts = ['', 'two\n\nnewlines', 'a"b', 'back\\slash', 'line\nbreak\ttab', 'nul\u0000byte', 'émoji 🚀 ünïcode', "it's", '\u2028\u2029', 'x'.repeat(300)];
  const pick = (k: number) => texts[(i + k) % texts.length]!;
  return {
    ...base,
    api: pick(0) || 'api',
    route: pick(1),
    path: pick(2),
    status: [0, 200, 65535][i % 3]!,
    latency_us: [0, 1, 9_007_199_254_740_990, 2 ** 32, 0x0a0a][i % 5]!, // avsc writes longs up to 2^53 - 2
    request_bytes: i * 1_000_003,
    // From 2001 (ten-digit seconds: the JSON path's "seconds.millis" text is misread by ClickHouse below that) to 2100.
    ts: [1_000_000_000_000, 1_000_000_000_001, 1_700_000_000_123, 4_102_444_799_999][i % 4]!,
    client_id: i % 2 ? null : pick(3),
    user_id: i % 3 ? pick(4) : null,
    error_message: i % 4 ? null : pick(5),
    attributes: i % 3 === 0 ? {} : { [`k${pick(6)}`]: pick(7), plain: pick(8), 'a b': '' },
  };
}

function records(count: number): { id: number; record: object }[] {
  const gen = new SyntheticEvents({ seed: 11, startMs: Date.UTC(2026, 10, 28), stepMs: 997 });
  const out: { id: number; record: object }[] = [];
  for (const [i, e] of gen.take(count).entries()) {
    const base = i % 7 === 0 ? awkward(e, i) : e;
    if (i % 2 === 0) out.push({ id: 1, record: base });
    else {
      const v2: ApiCallEventV2 = { ...base, protocol: i % 3 ? 'grpc' : 'h2', region: i % 5 ? 'eu-west-1' : '', retry_attempt: i % 4, upstream_latency_us: i % 3 ? null : i * 7, user_agent: i % 5 ? 'curl/8 "q"' : null };
      out.push({ id: 2, record: v2 });
    }
  }
  return out;
}

/** The JSON path's encoder, as TableWriter builds it for a table without RowBinary. */
function jsonEncoder(columns: readonly TableColumn[], format: 'JSONEachRow' | 'JSONCompactEachRow'): (id: number) => RowEncoder {
  const writer = new RowWriter({ columns, format });
  return (id) => ({
    layout: writer.layout,
    encode(value, out, topic, partition, _offset, offsetText) {
      const line = writer.line(decodeFramed(value, id, schemas.get(id)!), topic, partition, offsetText);
      out.reserve(line.length * 3);
      out.bytes += out.buf.write(line, out.bytes, 'utf8');
    },
  });
}

async function table(name: string, dialect: 'current' | 'legacy'): Promise<TableColumn[]> {
  await migrate(sink, { table: name, dialect });
  return sink.describe(name);
}

/** Every column of every row, as ClickHouse prints them (maps with sorted keys: see the key-order test). */
async function readAll(name: string, columns: readonly TableColumn[]): Promise<string[]> {
  const list = columns
    .filter((c) => c.name !== '_ingested_at' && c.defaultKind !== 'ALIAS')
    .map((c) => (c.type.startsWith('Map(') ? `mapSort(${c.name}) AS ${c.name}` : c.name))
    .join(', ');
  const rows = await sink.query<Record<string, unknown>>(`SELECT ${list} FROM ${name} ORDER BY _offset`);
  return rows.map((r) => JSON.stringify(r));
}

async function fill(name: string, encoderFor: (id: number) => RowEncoder, input: { id: number; record: object }[], values?: Buffer[]): Promise<(string | undefined)[]> {
  const batch = new PartitionBatch(TOPIC, 3);
  const refused: (string | undefined)[] = [];
  for (const [offset, item] of input.entries()) {
    try {
      batch.addEncoded(offset, 0, encoderFor(item.id), values?.[offset] ?? framed(item.id, item.record), 3, String(offset));
      refused.push(undefined);
    } catch (error) {
      if (!(error instanceof DecodeError)) throw error;
      refused.push(error.reason);
    }
  }
  if (batch.rows > 0) await new ClickHouseRows(sink, name).insert(batch.body().body, batch.rows, batch.id, batch.layout);
  return refused;
}

describe('RowBinary transcoder: the same rows as the JSON path (unit, embedded ClickHouse)', () => {
  for (const dialect of ['current', 'legacy'] as const) {
    it(`${dialect} table: 2,000 version-1 and version-2 records, awkward values included, read back column for column`, async () => {
      const columns = await table(`rb_json_${dialect}`, dialect);
      await table(`rb_bin_${dialect}`, dialect);
      const input = records(2000);
      const json = jsonEncoder(columns, dialect === 'legacy' ? 'JSONEachRow' : 'JSONCompactEachRow');
      // Version 1 and 2 fill the same column list (the v2 columns have literal defaults): one layout, one batch.
      const tw = new TableWriter({ describe: () => sink.describe(`rb_bin_${dialect}`), format: 'RowBinary', schemas: { url: 'test', cachedType: (id) => schemas.get(id) } });
      await tw.start();
      const binary = (id: number) => tw.encoderFor(frame(id, Buffer.alloc(0)));
      expect(binary(1).layout).toBe(binary(2).layout);
      expect(binary(1).layout.format).toBe('RowBinary');

      expect(await fill(`rb_json_${dialect}`, json, input)).toEqual(input.map(() => undefined));
      expect(await fill(`rb_bin_${dialect}`, binary, input)).toEqual(input.map(() => undefined));
      const [a, b] = await Promise.all([readAll(`rb_json_${dialect}`, columns), readAll(`rb_bin_${dialect}`, columns)]);
      expect(a).toHaveLength(2000);
      for (let i = 0; i < a.length; i++) expect(b[i], `row ${i}`).toBe(a[i]);
      // The version-1 rows took the literal defaults of the version-2 columns.
      const v1 = JSON.parse(b[0]!) as Record<string, unknown>;
      expect([v1['protocol'], v1['region'], Number(v1['retry_attempt']), v1['user_agent']]).toEqual(['http', '', 0, null]);
    });
  }

  it('refuses the records the JSON path refuses, for the same reason: out of range, truncated at every byte, trailing bytes, bad union index', async () => {
    const columns = await table('rb_refuse', 'current');
    const json = jsonEncoder(columns, 'JSONCompactEachRow')(1);
    const plan = compileRowBinary(apiCallTypeV1, columns);
    if (!('encoder' in plan)) throw new Error(plan.unsupported);
    const [good] = new SyntheticEvents({ seed: 2 }).take(1) as [ApiCallEvent];
    const values: Buffer[] = [];
    const valid = framed(1, good);
    for (let cut = 5; cut < valid.length; cut++) values.push(valid.subarray(0, cut)); // truncated
    values.push(Buffer.concat([valid, Buffer.from([0])])); // a trailing byte
    values.push(framed(1, { ...good, status: 70_000 })); // UInt16
    values.push(framed(1, { ...good, status: -1 }));
    values.push(framed(1, { ...good, ts: -5 })); // before the epoch
    // The eight optional fields are single 0x00 bytes (branch 0: null) before the empty attributes map: make one 4.
    const nulls = framed(1, { ...good, client_id: null, client_ip: null, user_id: null, tenant_id: null, trace_id: null, span_id: null, error_class: null, error_message: null, attributes: {} });
    const bad = Buffer.from(nulls);
    bad[nulls.length - 1 - 8] = 4;
    values.push(bad);
    const outcomes = (encoder: RowEncoder) => {
      const batch = new PartitionBatch(TOPIC, 0);
      return values.map((value, offset) => {
        try {
          batch.addEncoded(offset, 0, encoder, value, 0, String(offset));
          return 'row';
        } catch (error) {
          if (!(error instanceof DecodeError)) throw error;
          return error.reason;
        }
      });
    };
    const byBinary = outcomes(plan.encoder);
    expect(byBinary).toEqual(outcomes(json));
    expect(byBinary.slice(0, valid.length - 5).every((r) => r === 'corrupt-avro')).toBe(true);
    expect(byBinary.slice(valid.length - 5)).toEqual(['corrupt-avro', 'does-not-fit-table', 'does-not-fit-table', 'does-not-fit-table', 'corrupt-avro']);
    // A UUID column: ClickHouse refuses bad text on the JSON path (the row is split out and dead-lettered there);
    // the transcoder parses the UUID itself and refuses the record before the insert.
    const notUuid = framed(1, { ...good, event_id: 'not-a-uuid' });
    expect(() => new PartitionBatch(TOPIC, 0).addEncoded(0, 0, plan.encoder, notUuid, 0, '0')).toThrow(/event_id is "not-a-uuid", not a UUID/);
    expect(() => new PartitionBatch(TOPIC, 0).addEncoded(0, 0, json, notUuid, 0, '0')).not.toThrow();
  });

  it('random byte damage: the transcoder never writes a row the JSON path would refuse, nor refuses one it would take', async () => {
    const columns = await table('rb_fuzz', 'legacy');
    const json = jsonEncoder(columns, 'JSONEachRow');
    const plan = compileRowBinary(apiCallTypeV1, columns);
    if (!('encoder' in plan)) throw new Error(plan.unsupported);
    const random = prng(99);
    const events = new SyntheticEvents({ seed: 4 }).take(300);
    let agreedRefusals = 0;
    for (const [i, e] of events.entries()) {
      const value = Buffer.from(framed(1, e));
      for (let k = 0; k < 1 + (i % 3); k++) value[5 + Math.floor(random() * (value.length - 5))] = Math.floor(random() * 256);
      const outcome = (encoder: RowEncoder) => {
        try {
          new PartitionBatch(TOPIC, 0).addEncoded(i, 0, encoder, value, 0, String(i));
          return 'row';
        } catch (error) {
          if (!(error instanceof DecodeError)) throw error;
          return error.reason;
        }
      };
      const a = outcome(json(1));
      const b = outcome(plan.encoder);
      expect(`${i}: ${b}`).toBe(`${i}: ${a}`);
      if (a !== 'row') agreedRefusals++;
    }
    expect(agreedRefusals).toBeGreaterThan(30); // the damage did reach the decoders
  });

  it('keeps the producer\'s map key order (the JSON path puts integer-like keys first) and NUL bytes in strings', async () => {
    const columns = await table('rb_order', 'current');
    const plan = compileRowBinary(apiCallTypeV1, columns);
    if (!('encoder' in plan)) throw new Error(plan.unsupported);
    const [e] = new SyntheticEvents({ seed: 8 }).take(1) as [ApiCallEvent];
    // A JavaScript object cannot hold keys in this order ('10' would come first): write the map's bytes by hand in
    // place of the empty map that ends the record: one block of 3 entries, then the end block.
    const empty = framed(1, { ...e, path: 'a\u0000b', attributes: {} });
    const str = (t: string) => [Buffer.from([t.length * 2]), Buffer.from(t)];
    const map = Buffer.concat([Buffer.from([6]), ...['zeta', '1', '10', 'ten', 'alpha', '2'].flatMap(str), Buffer.from([0])]);
    const value = Buffer.concat([empty.subarray(0, empty.length - 1), map]);
    const batch = new PartitionBatch(TOPIC, 0);
    batch.addEncoded(0, 0, plan.encoder, value, 0, '0');
    await new ClickHouseRows(sink, 'rb_order').insert(batch.body().body, 1, batch.id, batch.layout);
    const [row] = await sink.query<{ keys: string[]; values: string[]; hex: string }>('SELECT mapKeys(attributes) AS keys, mapValues(attributes) AS values, hex(path) AS hex FROM rb_order');
    expect(row).toEqual({ keys: ['zeta', '10', 'alpha'], values: ['1', 'ten', '2'], hex: '610062' });
  });

  it('answers why not for a table it cannot fill, so the consumer sends JSON lines there', async () => {
    await sink.command('CREATE TABLE rb_array (api String, tags Array(String), _topic String, _partition UInt32, _offset UInt64) ENGINE = MergeTree ORDER BY _offset');
    const plan = compileRowBinary(apiCallTypeV1, await sink.describe('rb_array'));
    expect(plan).toEqual({ unsupported: 'column tags Array(String): no RowBinary writer for this type' });
  });
});
