/**
 * The RowBinary transcoder (consumer/rowBinary.ts) against the JSON row writer it replaces on the hot path, on the
 * embedded engine (chdb, a real ClickHouse): the same records go into two copies of a table, one as JSON lines and
 * one as RowBinary, and every column of every row must read back the same; a record one path refuses, the other must
 * refuse for the same reason. Run on the current table (UUID, DateTime64, LowCardinality, Map) and on the legacy one
 * (18.16's: epoch-ms UInt64, attributes as JSON text, a MATERIALIZED column), with version-1 and version-2 writers.
 */
import { describe, expect, it } from 'vitest';
import { ClickHouseRows } from '../../consumer/clickhouseRows.ts';
import { PartitionBatch } from '../../consumer/partitionBatch.ts';
import { compileRowBinary, type RowEncoder } from '../../consumer/rowBinary.ts';
import { prng, SyntheticEvents } from '../../producer/syntheticEvents.ts';
import { apiCallTypeV1, type ApiCallEvent } from '../../schemas/apiCall.ts';
import { DecodeError } from '../../runtime/errors.ts';
import { fill, framed, jsonEncoder, sameRowsBothWays, table, TOPIC } from '../rowBinarySameRows.ts';
import { embeddedClickHouse } from './embeddedClickHouse.ts';

const sink = embeddedClickHouse('apilog-rowbinary-');

describe('RowBinary transcoder: the same rows as the JSON path (unit, embedded ClickHouse)', () => {
  for (const dialect of ['current', 'legacy'] as const) {
    it(`${dialect} table: 2,000 version-1 and version-2 records, awkward values included, read back column for column`, async () => {
      await sameRowsBothWays(sink, `rb_${dialect}`, dialect);
    });
  }

  it('refuses the records the JSON path refuses, for the same reason: out of range, truncated at every byte, trailing bytes, bad union index', async () => {
    const columns = await table(sink, 'rb_refuse', 'current');
    const json = (await jsonEncoder(columns, 'JSONCompactEachRow'))(1);
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
    const columns = await table(sink, 'rb_fuzz', 'legacy');
    const json = await jsonEncoder(columns, 'JSONEachRow');
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
    const columns = await table(sink, 'rb_order', 'current');
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
    await new ClickHouseRows(sink, 'rb_order').insert(batch.body().body, 1, batch.layout);
    const [row] = await sink.query<{ keys: string[]; values: string[]; hex: string }>('SELECT mapKeys(attributes) AS keys, mapValues(attributes) AS values, hex(path) AS hex FROM rb_order');
    expect(row).toEqual({ keys: ['zeta', '10', 'alpha'], values: ['1', 'ten', '2'], hex: '610062' });
  });

  it('writes maps into the legacy JSON column as JSON.stringify does at the one-pass writer\'s edges: 63-65 entries, 63- and 64-byte strings, two blocks', async () => {
    const columns = await table(sink, 'rb_map_edges', 'legacy');
    const plan = compileRowBinary(apiCallTypeV1, columns);
    if (!('encoder' in plan)) throw new Error(plan.unsupported);
    const [e] = new SyntheticEvents({ seed: 9 }).take(1) as [ApiCallEvent];
    const entries = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}`, `v${i}`]));
    const maps: Record<string, string>[] = [entries(63), entries(64), entries(65), { a: 'y'.repeat(63) }, { a: 'z'.repeat(64) }, { ['k'.repeat(64)]: '' }];
    const values = maps.map((attributes) => framed(1, { ...e, attributes }));
    // Two blocks of one entry each (avsc writes one block): the one-pass writer must leave it to the general one.
    const empty = framed(1, { ...e, attributes: {} });
    const str = (t: string) => [Buffer.from([t.length * 2]), Buffer.from(t)];
    values.push(Buffer.concat([empty.subarray(0, empty.length - 1), Buffer.from([2]), ...str('b'), ...str('1'), Buffer.from([2]), ...str('a'), ...str('2'), Buffer.from([0])]));
    const batch = new PartitionBatch(TOPIC, 0);
    for (const [offset, value] of values.entries()) batch.addEncoded(offset, 0, plan.encoder, value, 0, String(offset));
    await new ClickHouseRows(sink, 'rb_map_edges').insert(batch.body().body, batch.rows, batch.layout);
    const rows = await sink.query<{ attributes: string }>('SELECT attributes FROM rb_map_edges ORDER BY _offset');
    expect(rows.map((r) => r.attributes)).toEqual([...maps.map((m) => JSON.stringify(m)), '{"b":"1","a":"2"}']);
  });

  it('writes the Kafka coordinates into Nullable columns too (_topic Nullable(String) takes its not-null flag)', async () => {
    await sink.command('CREATE TABLE rb_nullable_coordinates (api String, _topic Nullable(String), _partition Nullable(UInt32), _offset UInt64) ENGINE = MergeTree ORDER BY _offset');
    const plan = compileRowBinary(apiCallTypeV1, await sink.describe('rb_nullable_coordinates'));
    if (!('encoder' in plan)) throw new Error(plan.unsupported);
    const events = new SyntheticEvents({ seed: 5 }).take(3);
    const batch = new PartitionBatch(TOPIC, 3);
    for (const [offset, e] of events.entries()) batch.addEncoded(offset, 0, plan.encoder, framed(1, e), 3, String(offset));
    await new ClickHouseRows(sink, 'rb_nullable_coordinates').insert(batch.body().body, batch.rows, batch.layout);
    const rows = await sink.query<{ api: string; _topic: string; _partition: number; _offset: string | number }>('SELECT api, _topic, _partition, _offset FROM rb_nullable_coordinates ORDER BY _offset');
    expect(rows.map((r) => [r.api, r._topic, r._partition, Number(r._offset)])).toEqual(events.map((e, i) => [e.api, TOPIC, 3, i]));
  });

  it('a numeric literal default reads as ClickHouse reads it: seconds in a DateTime, its own text in a String', async () => {
    const create = (name: string) => sink.command(`CREATE TABLE ${name} (api String, since DateTime('UTC') DEFAULT 1700000000, since_ms DateTime64(3, 'UTC') DEFAULT 1700000000,
      since_half DateTime64(3, 'UTC') DEFAULT 1700000000.5, big String DEFAULT 12345678901234567890, huge String DEFAULT 1e21, small UInt16 DEFAULT 7,
      _topic String, _partition UInt32, _offset UInt64) ENGINE = MergeTree ORDER BY _offset`);
    await create('rb_number_defaults_json');
    await create('rb_number_defaults_bin');
    const columns = await sink.describe('rb_number_defaults_bin');
    const plan = compileRowBinary(apiCallTypeV1, columns);
    if (!('encoder' in plan)) throw new Error(plan.unsupported);
    const input = new SyntheticEvents({ seed: 6 }).take(2).map((record) => ({ id: 1, record }));
    // JSONEachRow leaves the columns the record lacks to ClickHouse, which computes their defaults.
    await fill(sink, 'rb_number_defaults_json', await jsonEncoder(columns, 'JSONEachRow'), input);
    await fill(sink, 'rb_number_defaults_bin', () => plan.encoder, input);
    const read = (name: string) => sink.query<Record<string, unknown>>(`SELECT since, since_ms, since_half, big, huge, small FROM ${name} ORDER BY _offset`);
    const [json, binary] = [await read('rb_number_defaults_json'), await read('rb_number_defaults_bin')];
    expect(json[0]).toMatchObject({ since: '2023-11-14 22:13:20', big: '12345678901234567890', small: 7 });
    expect(binary).toEqual(json);
  });

  it('answers why not for a table it cannot fill, so the consumer sends JSON lines there', async () => {
    await sink.command('CREATE TABLE rb_array (api String, tags Array(String), _topic String, _partition UInt32, _offset UInt64) ENGINE = MergeTree ORDER BY _offset');
    const plan = compileRowBinary(apiCallTypeV1, await sink.describe('rb_array'));
    expect(plan).toEqual({ unsupported: 'column tags Array(String): no RowBinary writer for this type' });
  });
});
