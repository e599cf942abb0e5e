/**
 * The consumer's table writer (consumer/tableWriter.ts) on the embedded engine (chdb; in-process, no service):
 * the table's columns are read again when a writer schema id appears that the process has not seen (once per id,
 * concurrent batches sharing one read), so version-2 fields land in the columns a migration added while the consumer
 * ran. Rows go in as JSONCompactEachRow, where a field the writer schema lacks takes the column's default.
 */
import type { KafkaMessage } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { ensureApiCallsTable } from '../../clickhouse/apiCallsTable.ts';
import { ClickHouseRows } from '../../consumer/clickhouseRows.ts';
import { RowWriter } from '../../consumer/rowWriter.ts';
import type { TableColumn } from '../../clickhouse/sink.ts';
import { schemaIds } from '../../consumer/decoder.ts';
import { TableWriter } from '../../consumer/tableWriter.ts';
import { SyntheticEvents } from '../../producer/syntheticEvents.ts';
import { frame } from '../../schemas/wire.ts';
import { embeddedClickHouse } from './embeddedClickHouse.ts';

const sink = embeddedClickHouse('apilog-table-writer-');

/** A framed message of schema `id` (the body does not matter here). */
const message = (id: number, offset = 0): KafkaMessage =>
  ({ offset: String(offset), key: null, value: frame(id, Buffer.from([2, 4])), timestamp: '0', attributes: 0, headers: {} }) as KafkaMessage;

describe('TableWriter: columns re-read per new writer schema id (unit, embedded ClickHouse)', () => {
  it('reads the columns once per new id, so fields of columns added by a migration stop being dropped', async () => {
    await ensureApiCallsTable(sink, 'tw', { to: 4 }); // before 0005_v2_fields
    let describes = 0;
    const table = new TableWriter({ describe: () => (describes++, sink.describe('tw')), format: 'JSONCompactEachRow' });
    await table.start();
    await table.prepare(schemaIds([message(7), message(7), message(7)]));
    expect(describes).toBe(2); // start, then id 7
    const v1Writer = table.writer;
    expect(v1Writer.layout.columns).not.toContain('protocol');

    await ensureApiCallsTable(sink, 'tw'); // the migration adds the version-2 columns while the consumer runs
    await table.prepare(schemaIds([message(7), message(7)]));
    expect(describes).toBe(2); // id 7 was seen: no read, no per-batch cost
    expect(table.writer).toBe(v1Writer);

    // Two batches of partitions processed at once bring the new id: one read, both wait for it.
    await Promise.all([table.prepare(schemaIds([message(7), message(8)])), table.prepare(schemaIds([message(8)]))]);
    expect(describes).toBe(3);
    expect(table.writer).not.toBe(v1Writer);
    expect(table.writer.layout.columns).toEqual(expect.arrayContaining(['protocol', 'region', 'retry_attempt', 'upstream_latency_us', 'user_agent']));
    expect(table.writer.layout.format).toBe('JSONCompactEachRow');

    // A version-1 record (no protocol field) and a version-2 record in one compact insert: the first takes the
    // column default ('http', 0), the second its own values.
    const [e1, e2] = new SyntheticEvents({ seed: 5 }).take(2);
    const writer = table.writer;
    const body = Buffer.from(
      writer.line({ ...e1! }, 'topic-a', 0, '0') +
        writer.line({ ...e2!, protocol: 'grpc', region: 'eu-west-1', retry_attempt: 2, upstream_latency_us: 150, user_agent: 'curl/8' }, 'topic-a', 0, '1'),
    );
    await new ClickHouseRows(sink, 'tw').insert(body, 2, writer.layout);
    const rows = await sink.query<{ _offset: string; protocol: string; retry_attempt: number; user_agent: string | null; event_id: string }>(
      'SELECT toString(_offset) AS _offset, protocol, retry_attempt, user_agent, toString(event_id) AS event_id FROM tw ORDER BY _offset',
    );
    expect(rows).toEqual([
      { _offset: '0', protocol: 'http', retry_attempt: 0, user_agent: null, event_id: e1!.event_id },
      { _offset: '1', protocol: 'grpc', retry_attempt: 2, user_agent: 'curl/8', event_id: e2!.event_id },
    ]);
  });

  it('a failed read is not remembered: the next batch with that id reads again', async () => {
    let fail = true;
    let describes = 0;
    const table = new TableWriter({
      describe: async () => {
        describes++;
        if (fail && describes > 1) throw new Error('ClickHouse unreachable');
        return sink.describe('tw');
      },
    });
    await table.start();
    await expect(table.prepare(schemaIds([message(9)]))).rejects.toThrow(/unreachable/);
    fail = false;
    await table.prepare(schemaIds([message(9)]));
    expect(describes).toBe(3);
  });

  it('schemaIds: distinct ids in order, non-frames ignored', () => {
    const junk = { ...message(1), value: Buffer.from([1, 0, 0, 0, 1]) } as KafkaMessage;
    expect(schemaIds([message(3), message(3), junk, message(4), message(3), { ...message(1), value: null } as KafkaMessage])).toEqual([3, 4]);
  });
});

describe('RowWriter compact rows', () => {
  const col = (name: string, type: string, defaultKind = '', defaultExpression = ''): TableColumn => ({ name, type, defaultKind, defaultExpression });

  it('writes values in column order, null for an absent field, and falls back to JSONEachRow when null cannot mean the default', () => {
    const w = new RowWriter({ columns: [col('a', 'String'), col('n', 'UInt16', 'DEFAULT', '7'), col('_offset', 'UInt64'), col('at', 'DateTime', 'DEFAULT', 'now()')], format: 'JSONCompactEachRow' });
    expect(w.layout).toEqual({ format: 'JSONCompactEachRow', columns: ['a', 'n', '_offset', 'at'] });
    expect(w.line({ a: 'x"y' }, 't', 0, '42')).toBe('["x\\"y",null,42,null]\n');
    const fallback = new RowWriter({ columns: [col('a', 'String'), col('u', 'Nullable(String)', 'DEFAULT', "'anonymous'")], format: 'JSONCompactEachRow' });
    expect(fallback.layout.format).toBe('JSONEachRow');
    expect(fallback.line({ a: 'x' }, 't', 0, '1')).toBe('{"a":"x"}\n');
  });
});
