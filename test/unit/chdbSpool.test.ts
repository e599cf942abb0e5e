/**
 * The embedded sink's RowBinary spool (clickhouse/chdbSink.ts): bodies wait in the data directory, which chdb locks to
 * one process; what a process killed mid-insert left there is cleared when the directory is opened again, and
 * closing removes the spool.
 */
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ChdbSink } from '../../clickhouse/chdbSink.ts';
import { embeddedClickHouse } from './embeddedClickHouse.ts';

const sink = embeddedClickHouse('apilog-chdb-spool-');

describe('embedded sink: the RowBinary spool (unit, embedded ClickHouse)', () => {
  it('clears a killed process\'s leftovers on open, leaves nothing after an insert, and goes away on close', async () => {
    const spool = join(sink.address, 'apilog-rowbinary');
    mkdirSync(spool, { recursive: true });
    writeFileSync(join(spool, '999-0.bin'), Buffer.alloc(1024)); // as a SIGKILLed consumer leaves it
    await sink.command('CREATE TABLE spool_t (a UInt32, b String) ENGINE = MergeTree ORDER BY a');
    expect(readdirSync(spool)).toEqual([]);
    const row = Buffer.concat([Buffer.from([7, 0, 0, 0]), Buffer.from([2]), Buffer.from('\n\n')]);
    await sink.insertRows('spool_t', row, 'RowBinary', ['a', 'b']);
    expect(await sink.query('SELECT a, b FROM spool_t')).toEqual([{ a: 7, b: '\n\n' }]);
    expect(readdirSync(spool)).toEqual([]);
    await sink.close();
    expect(existsSync(spool)).toBe(false);
  });

  it('a sink that never opened its directory leaves the directory alone on close', async () => {
    const spool = join(sink.address, 'apilog-rowbinary');
    await sink.query('SELECT 1'); // opened again by the shared sink
    writeFileSync(join(spool, 'in-flight.bin'), Buffer.alloc(8));
    await new ChdbSink(sink.address).close(); // another instance on the same directory, never opened
    expect(readdirSync(spool)).toEqual(['in-flight.bin']);
  });
});

describe('embedded sink: a data directory whose path file() would read as a glob', () => {
  it('does not take RowBinary (the consumer sends JSON lines there)', () => {
    expect(new ChdbSink('/tmp/apilog-{a,b}').takesRowBinary).toBe(false);
    expect(new ChdbSink('/tmp/apilog-*').takesRowBinary).toBe(false);
    expect(new ChdbSink(sink.address).takesRowBinary).toBe(true);
  });
});
