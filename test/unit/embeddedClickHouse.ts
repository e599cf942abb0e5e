/** An embedded ClickHouse (chdb) of a test file's own, for unit tests that need a real engine but no service. */
import { randomUUID } from 'node:crypto';
import { rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import { ChdbSink } from '../../consumer/chdbSink.ts';

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
