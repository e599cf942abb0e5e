import { describe, expect, it } from 'vitest';
import { DecodeError } from '../../runtime/errors.ts';
import { RowWriter } from '../../consumer/rowWriter.ts';
import type { TableColumn } from '../../clickhouse/sink.ts';

const col = (name: string, type: string, defaultKind = ''): TableColumn => ({ name, type, defaultKind });

const lines = (w: RowWriter) => w.take().toString('utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);

describe('RowWriter', () => {
  it('fills columns from fields and Kafka coordinates, converting by column type', () => {
    const w = new RowWriter({
      columns: [
        col('ts', "DateTime64(3, 'UTC')"),
        col('ts_s', 'DateTime'),
        col('api', 'LowCardinality(String)'),
        col('status', 'UInt16'),
        col('attributes', 'Map(String, String)'),
        col('attrs_text', 'String'),
        col('user_id', 'Nullable(String)'),
        col('_topic', 'LowCardinality(String)'),
        col('_partition', 'UInt32'),
        col('_offset', 'UInt64'),
        col('date', 'Date', 'MATERIALIZED'),
        col('_ingested_at', 'DateTime', 'DEFAULT'),
      ],
    });
    w.append(
      { ts: 1_700_000_000_007, ts_s: 1_700_000_000_999, api: 'a"b', status: 204, attributes: { k: 'v' }, attrs_text: { x: '1' }, user_id: null },
      'topic-1', 3, '12345678901',
    );
    expect(w.rowCount).toBe(1);
    const [row] = lines(w);
    expect(row).toEqual({
      ts: '1700000000.007',
      ts_s: 1_700_000_000,
      api: 'a"b',
      status: 204,
      attributes: { k: 'v' },
      attrs_text: '{"x":"1"}',
      user_id: null,
      _topic: 'topic-1',
      _partition: 3,
      _offset: 12345678901,
    });
    expect(w.rowCount).toBe(0);
  });

  it('leaves out fields the record lacks, so the column default applies', () => {
    const w = new RowWriter({ columns: [col('a', 'String'), col('b', 'String')] });
    w.append({ a: 'x' }, 't', 0, '0');
    expect(lines(w)).toEqual([{ a: 'x' }]);
  });

  it('rejects values that do not fit, naming the column, and appends nothing', () => {
    const w = new RowWriter({ columns: [col('status', 'UInt16'), col('name', 'String')] });
    for (const record of [{ status: 70_000 }, { status: -1 }, { status: 1.5 }, { status: null }]) {
      try {
        w.append({ ...record, name: 'n' }, 't', 0, '1');
        expect.unreachable();
      } catch (e) {
        expect(e).toBeInstanceOf(DecodeError);
        expect((e as DecodeError).reason).toBe('does-not-fit-table');
        expect((e as DecodeError).message).toContain('status');
      }
    }
    expect(w.rowCount).toBe(0);
  });

  it('keeps DateTime64 exact at other scales', () => {
    const w = new RowWriter({ columns: [col('t6', 'DateTime64(6)'), col('t0', 'DateTime64(0)')] });
    w.append({ t6: 1_000_050, t0: 1_000_050 }, 't', 0, '0');
    expect(lines(w)).toEqual([{ t6: '1000.050000', t0: '1000' }]);
  });
});
