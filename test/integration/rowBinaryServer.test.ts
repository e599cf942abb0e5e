/**
 * RowBinary over HTTP into Debian's ClickHouse 18.16 server (integration): the awkward version-1 and version-2
 * records of test/rowBinarySameRows.ts go into two copies of the legacy table, one as JSONEachRow and one as RowBinary
 * from the transcoder, and every column of every row must read back the same (the unit test does this on chdb) —
 * except where 18.16's JSONEachRow is wrong: it ignores a column's DEFAULT for a field the record lacks.
 */
import { afterAll, describe, it } from 'vitest';
import { ClickHouseServerSink } from '../../clickhouse/serverSink.ts';
import { sameRowsBothWays } from '../rowBinarySameRows.ts';
import { stack, uniqueName } from './pipeline.ts';

describe('RowBinary into the 18.16 server (integration)', () => {
  const sink = new ClickHouseServerSink({ url: stack().clickhouse });
  afterAll(() => sink.close());

  it('legacy table: the same rows as JSONEachRow, column for column, and the DEFAULT that JSONEachRow skips', async () => {
    await sameRowsBothWays(sink, uniqueName('rb'), 'legacy', true);
  });
});
