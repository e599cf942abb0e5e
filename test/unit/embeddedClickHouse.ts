/** An embedded ClickHouse (chdb) of a test file's own, for unit tests that need a real engine but no service. */
import { randomUUID } from 'node:crypto';
import { rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import { ensureApiCallsTable } from '../../clickhouse/apiCallsTable.ts';
import { ChdbSink } from '../../clickhouse/chdbSink.ts';
import { RowWriter } from '../../consumer/rowWriter.ts';
import type { ApiCallEvent } from '../../schemas/apiCall.ts';

/**
 * A sink on a fresh directory under the system's temp dir, named `<prefix><uuid>`; the engine creates the directory
 * on first use. Call at the top level of a test file: it closes the sink and removes the directory after the file's tests.
 */
export function embeddedClickHouse(prefix: string): ChdbSink {
  const dir = join(tmpdir(), `${prefix}${randomUUID()}`);
  const sink = new ChdbSink(dir);
  afterAll(async () => {
    await sink.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return sink;
}

/**
 * Creates `table` with the real migrations and writes `events` into it through the consumer's RowWriter, in
 * consumer-sized inserts (partition 0 of topic api-calls, offsets in order), so its rollups are fed as in production.
 */
export async function writeEvents(sink: ChdbSink, table: string, events: readonly ApiCallEvent[], batch = 5000): Promise<void> {
  await ensureApiCallsTable(sink, table);
  const writer = new RowWriter({ columns: await sink.describe(table) });
  for (let i = 0; i < events.length; i += batch) {
    events.slice(i, i + batch).forEach((e, j) => writer.append(e as unknown as Record<string, unknown>, 'api-calls', 0, String(i + j)));
    await sink.insertJsonEachRow(table, writer.take());
  }
}
