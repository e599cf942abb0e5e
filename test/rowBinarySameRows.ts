/**
 * Shared by the RowBinary tests (test/unit/consumerRowBinary.test.ts on the embedded engine,
 * test/integration/rowBinaryServer.test.ts on the 18.16 server): awkward version-1 and version-2 records, the JSON
 * path's encoder, and `sameRowsBothWays`, which fills two copies of a table, one through each path, and compares every
 * column of every row.
 */
import type { Type } from 'avsc';
import { expect } from 'vitest';
import { ClickHouseRows } from '../consumer/clickhouseRows.ts';
import { PartitionBatch } from '../consumer/partitionBatch.ts';
import type { RowEncoder } from '../consumer/rowBinary.ts';
import type { Sink, TableColumn } from '../clickhouse/sink.ts';
import { TableWriter } from '../consumer/tableWriter.ts';
import { SyntheticEvents } from '../producer/syntheticEvents.ts';
import { apiCallTypeV1, apiCallTypeV2, type ApiCallEvent, type ApiCallEventV2 } from '../schemas/apiCall.ts';
import { migrate, type Dialect } from '../clickhouse/migrations.ts';
import { frame } from '../schemas/wire.ts';
import { DecodeError } from '../runtime/errors.ts';

export const TOPIC = 'api-calls.rb';

export const schemas = new Map<number, Type>([
  [1, apiCallTypeV1],
  [2, apiCallTypeV2],
]);
export const framed = (id: number, record: object) => frame(id, schemas.get(id)!.toBuffer(record));

/**
 * Awkward but valid values: quotes, backslashes, control characters, NUL, emoji, empty strings, extremes, strings of
 * 62 to 64 UTF-8 bytes (the transcoder copies runs of strings under 64 bytes at once), and "\n\n" in
 * text and in binary (2570 is 0x0a0a), which chdb's inline raw insert would take for the end of the data.
 */
function awkward(base: ApiCallEvent, i: number): ApiCallEvent {
  const texts = ['', 'two\n\nnewlines', 'a"b', 'back\\slash', 'line\nbreak\ttab', 'nul\u0000byte', 'émoji 🚀 ünïcode', "it's", '\u2028\u2029', 'x'.repeat(300), 'y'.repeat(63), 'z'.repeat(64), 'é'.repeat(32)]; // a count prime to 7: every record i % 7 === 0 meets each text in each field
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
    // One text alone in a map too, so that each escape is met without another beside it.
    attributes: i % 3 === 0 ? {} : i % 3 === 1 ? { [`k${pick(6)}`]: pick(7), plain: pick(8), 'a b': '' } : { alone: pick(9) },
  };
}

export function records(count: number): { id: number; record: object }[] {
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

/** The JSON path's encoder per schema id: the consumer's own (TableWriter without RowBinary) for these columns. */
export async function jsonEncoder(columns: readonly TableColumn[], format: 'JSONEachRow' | 'JSONCompactEachRow'): Promise<(id: number) => RowEncoder> {
  const writer = new TableWriter({ describe: async () => [...columns], format, schemas: { url: 'test', cachedType: (id) => schemas.get(id) } });
  await writer.start();
  return (id) => writer.encoderFor(frame(id, Buffer.alloc(0)));
}

export async function table(sink: Sink, name: string, dialect: Dialect): Promise<TableColumn[]> {
  await migrate(sink, { table: name, dialect });
  return sink.describe(name);
}

/** Every column of every row, as ClickHouse prints them (maps with sorted keys: see the key-order test). */
async function readAll(sink: Sink, name: string, columns: readonly TableColumn[]): Promise<string[]> {
  const list = columns
    .filter((c) => c.name !== '_ingested_at' && c.defaultKind !== 'ALIAS')
    .map((c) => (c.type.startsWith('Map(') ? `mapSort(${c.name}) AS ${c.name}` : c.name)) // (18.16 has no Map columns)
    .join(', ');
  const rows = await sink.query<Record<string, unknown>>(`SELECT ${list} FROM ${name} ORDER BY _offset`);
  return rows.map((r) => JSON.stringify(r));
}

export async function fill(sink: Sink, name: string, encoderFor: (id: number) => RowEncoder, input: { id: number; record: object }[], values?: Buffer[]): Promise<(string | undefined)[]> {
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
  if (batch.rows > 0) await new ClickHouseRows(sink, name).insert(batch.body().body, batch.rows, batch.layout);
  return refused;
}

/**
 * 2,000 version-1 and version-2 records, awkward values included, into `<prefix>_json` through the JSON path and
 * `<prefix>_bin` as RowBinary; every column of every row must read back the same. `jsonSkipsDefaults`: the engine's
 * JSONEachRow leaves a field the record lacks at its type's zero value instead of the column's DEFAULT (ClickHouse
 * 18.16, before input_format_defaults_for_omitted_fields), so a version-1 row's `protocol` is '' there, not 'http':
 * compared apart (RowBinary writes the default itself).
 */
export async function sameRowsBothWays(sink: Sink, prefix: string, dialect: Dialect, jsonSkipsDefaults = false): Promise<void> {
  const columns = await table(sink, `${prefix}_json`, dialect);
  await table(sink, `${prefix}_bin`, dialect);
  const input = records(2000);
  const json = await jsonEncoder(columns, dialect === 'legacy' ? 'JSONEachRow' : 'JSONCompactEachRow');
  // Version 1 and 2 fill the same column list (the v2 columns have literal defaults): one layout, one batch.
  const tw = new TableWriter({ describe: () => sink.describe(`${prefix}_bin`), rowBinary: true, schemas: { url: 'test', cachedType: (id) => schemas.get(id) } });
  await tw.start();
  const binary = (id: number) => tw.encoderFor(frame(id, Buffer.alloc(0)));
  expect(binary(1).layout).toBe(binary(2).layout);
  expect(binary(1).layout.format).toBe('RowBinary');

  expect(await fill(sink, `${prefix}_json`, json, input)).toEqual(input.map(() => undefined));
  expect(await fill(sink, `${prefix}_bin`, binary, input)).toEqual(input.map(() => undefined));
  const [a, b] = await Promise.all([readAll(sink, `${prefix}_json`, columns), readAll(sink, `${prefix}_bin`, columns)]);
  expect(a).toHaveLength(2000);
  for (let i = 0; i < a.length; i++) {
    if (jsonSkipsDefaults && input[i]!.id === 1) {
      const [x, y] = [JSON.parse(a[i]!) as Record<string, unknown>, JSON.parse(b[i]!) as Record<string, unknown>];
      expect([x['protocol'], y['protocol']], `row ${i}`).toEqual(['', 'http']);
      delete x['protocol'];
      delete y['protocol'];
      expect(y, `row ${i}`).toEqual(x);
    } else {
      expect(b[i], `row ${i}`).toBe(a[i]);
    }
  }
  // The version-1 rows took the literal defaults of the version-2 columns.
  const v1 = JSON.parse(b[0]!) as Record<string, unknown>;
  expect([v1['protocol'], v1['region'], Number(v1['retry_attempt']), v1['user_agent']]).toEqual(['http', '', 0, null]);
}
