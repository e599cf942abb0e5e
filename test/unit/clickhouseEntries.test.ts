/**
 * Entry tables and deduplication tokens (consumer/clickhouseRows.ts) on a current ClickHouse: the embedded engine
 * (chdb, ClickHouse 26.x), with entries switched on as a server sink has them. The server-only parts (HTTP, query
 * ids, KILL QUERY of a request that waits) are tested against the Debian server in test/integration/insertFencing.
 * - rows inserted through an entry land in the table and, through its views, in every rollup;
 * - the same batch sent again with its token through the same entry lands once; through another entry it lands
 *   again: a block's identity includes the names of the views it went through. That is why a server whose table
 *   deduplicates takes no entries (ClickHouseRows chooses): a batch is sent again straight into the table;
 * - a fenced entry is gone: an insert through it fails with EntryFencedError (retriable) and nothing lands;
 * - rows encoded for other column types get a new entry, or ColumnsChangedError when the table cannot take them.
 */
import { describe, expect, it } from 'vitest';
import { ensureApiCallsTable } from '../../clickhouse/apiCallsTable.ts';
import { ColumnsChangedError } from '../../clickhouse/errors.ts';
import { ClickHouseRows, EntryFencedError } from '../../consumer/clickhouseRows.ts';
import type { RowLayout } from '../../clickhouse/sink.ts';
import { RowWriter } from '../../consumer/rowWriter.ts';
import { SyntheticEvents } from '../../producer/syntheticEvents.ts';
import { checkRollups } from '../rollupCheck.ts';
import { embeddedClickHouse } from './embeddedClickHouse.ts';

const sink = embeddedClickHouse('apilog-entries-');

async function tables(prefix: string): Promise<string[]> {
  const rows = await sink.query<{ name: string }>('SELECT name FROM system.tables WHERE database = currentDatabase() AND startsWith(name, {p:String}) ORDER BY name', { p: prefix });
  return rows.map((r) => r.name);
}

describe('entry tables and tokens on a current ClickHouse (unit, embedded engine with entries on)', () => {
  it('lands rows through an entry into the table and its rollups, once per token through one entry', async () => {
    await ensureApiCallsTable(sink, 'ent');
    const rows = new ClickHouseRows(sink, 'ent', { entries: true });
    await rows.start();
    expect(rows.deduplicates).toBe(true);
    expect(rows.fences).toBe(true);
    const columns = await sink.describe('ent');
    const writer = new RowWriter({ columns, format: 'JSONCompactEachRow' });
    const events = new SyntheticEvents({ seed: 3, startMs: Date.UTC(2026, 10, 4), stepMs: 1000 }).take(300);
    events.forEach((e, i) => {
      if (i % 10 === 3) e.ts -= 40 * 86_400_000; // another month: the insert becomes several parts
    });
    const body = Buffer.from(events.map((e, i) => writer.line({ ...e }, 'topic-e', 0, String(i))).join(''));
    const first = await rows.entry(writer.layout);
    expect(first).toMatch(/^ent__in_[0-9a-f]{12}$/);
    expect(await tables('ent__in_')).toEqual([first, `${first}_mv`]);
    const attempt = { token: 'topic-e/0/0-299/abc', entry: first, label: 'topic-e/0/0-299' };
    await rows.insert(body, 300, writer.layout, attempt);
    await rows.insert(body, 300, writer.layout, attempt); // sent again, same entry: deduplicated
    expect(await checkRollups(sink, 'ent')).toEqual({ mismatched: { minute: 0, hour: 0, clients: 0 }, rawRows: 300, requests: { minute: 300, hour: 300, clients: 300 } });
    await rows.fence(first!);
    expect(await tables('ent__in_')).toEqual([]);
    await expect(rows.insert(body, 300, writer.layout, attempt)).rejects.toBeInstanceOf(EntryFencedError);
    const second = await rows.entry(writer.layout);
    expect(second).not.toBe(first);
    // Through another entry the same token is another block: stored again (raw table and rollups alike).
    await rows.insert(body, 300, writer.layout, { ...attempt, entry: second });
    expect(await checkRollups(sink, 'ent')).toEqual({ mismatched: { minute: 0, hour: 0, clients: 0 }, rawRows: 600, requests: { minute: 600, hour: 600, clients: 600 } });
    await rows.close();
    expect(await tables('ent__in_')).toEqual([]);
    // Left to choose, the consumer sends straight into a table that deduplicates.
    const chosen = new ClickHouseRows(sink, 'ent');
    await chosen.start();
    expect({ deduplicates: chosen.deduplicates, fences: chosen.fences, entry: await chosen.entry() }).toEqual({ deduplicates: true, fences: false, entry: undefined });
  });

  it('rows encoded for column types the entry lacks get a new entry; types the table lacks are ColumnsChangedError', async () => {
    await ensureApiCallsTable(sink, 'ent_types');
    const rows = new ClickHouseRows(sink, 'ent_types', { entries: true });
    await rows.start();
    const layout = (status: string): RowLayout => ({ format: 'RowBinary', columns: ['status'], types: [status] });
    const first = await rows.entry(layout('UInt16'));
    await sink.command('ALTER TABLE ent_types MODIFY COLUMN status UInt32');
    expect(await rows.entry(layout('UInt16'))).toBe(first); // the entry still reads UInt16 (its view converts)
    const second = await rows.entry(layout('UInt32')); // rows encoded anew for the table's type
    expect(second).not.toBe(first);
    expect(await tables('ent_types__in_')).toEqual([second, `${second}_mv`]);
    await expect(rows.entry(layout('Int8'))).rejects.toBeInstanceOf(ColumnsChangedError);
    await rows.close();
  });

  it('a table without a deduplication window is not taken for one that deduplicates', async () => {
    await sink.command('CREATE TABLE ent_plain (_topic String, _partition UInt32, _offset UInt64) ENGINE = MergeTree ORDER BY _offset');
    const rows = new ClickHouseRows(sink, 'ent_plain');
    await rows.start();
    expect(rows.deduplicates).toBe(false);
  });
});
