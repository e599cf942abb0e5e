/**
 * The walking skeleton against the real stack: 10,000 events through the real broker and registry,
 * consumed into ClickHouse — once into the Debian server over HTTP, once into the embedded engine —
 * and read back: exactly 10,000 rows with the same content.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ChdbSink } from '../../clickhouse/chdbSink.ts';
import { ClickHouseServerSink } from '../../clickhouse/serverSink.ts';
import type { Sink } from '../../clickhouse/sink.ts';
import { SyntheticEvents } from '../../producer/syntheticEvents.ts';
import { byEventId, consumeInto, produce, readBack, stack, uniqueName } from './pipeline.ts';

const N = 10_000;

async function roundTrip(sink: Sink): Promise<void> {
  const topic = uniqueName('it-e2e');
  const table = uniqueName('e2e');
  const events = new SyntheticEvents({ seed: 11, apis: 15, startMs: Date.UTC(2026, 10, 1), stepMs: 37 }).take(N);
  await produce(topic, events);
  const rows = await consumeInto(sink, table, topic, N);
  expect(rows).toBe(N);
  const stored = await readBack(sink, table);
  expect(stored.length).toBe(N);
  expect(new Set(stored.map((e) => e.event_id)).size).toBe(N);
  const expected = [...events].sort(byEventId);
  for (let i = 0; i < N; i++) expect(stored[i]).toEqual(expected[i]);
  // Kafka coordinates: every offset of every partition exactly once.
  const offsets = await sink.query<{ p: number; n: string | number; lo: string | number; hi: string | number; u: string | number }>(
    `SELECT _partition AS p, count() AS n, min(_offset) AS lo, max(_offset) AS hi, uniqExact(_offset) AS u FROM ${table} GROUP BY p ORDER BY p`,
  );
  expect(offsets.length).toBe(6);
  for (const o of offsets) {
    expect(Number(o.lo)).toBe(0);
    expect(Number(o.u)).toBe(Number(o.n));
    expect(Number(o.hi)).toBe(Number(o.n) - 1);
  }
}

describe('end to end: producer → Kafka → consumer → ClickHouse (integration)', () => {
  const dirs: string[] = [];
  afterAll(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it('lands 10,000 events exactly once in the Debian ClickHouse server', async () => {
    const sink = new ClickHouseServerSink({ url: stack().clickhouse });
    try {
      expect((await sink.version()).startsWith('18.')).toBe(true);
      await roundTrip(sink);
    } finally {
      await sink.close();
    }
  });

  it('lands 10,000 events exactly once in the embedded engine (chdb)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'apilog-chdb-'));
    dirs.push(dir);
    const sink = new ChdbSink(dir);
    try {
      expect(Number((await sink.version()).split('.')[0])).toBeGreaterThanOrEqual(24);
      await roundTrip(sink);
    } finally {
      await sink.close();
    }
  });
});
