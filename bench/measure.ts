/** Small measuring helpers shared by the ClickHouse benchmarks. */
import type { Sink } from '../clickhouse/sink.ts';

/** The fastest of `runs` runs, in milliseconds (the first run warms caches and is counted too). */
export async function bestOf(runs: number, run: () => Promise<unknown>): Promise<number> {
  let best = Number.POSITIVE_INFINITY;
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await run();
    best = Math.min(best, performance.now() - t0);
  }
  return best;
}

/** Bytes on disk of a table's active parts (projections included), from system.parts. */
export async function bytesOnDisk(sink: Sink, table: string): Promise<number> {
  const rows = await sink.query<{ b: string | number }>(
    'SELECT sum(bytes_on_disk) AS b FROM system.parts WHERE active AND database = currentDatabase() AND table = {table:String}',
    { table },
  );
  return Number(rows[0]?.b ?? 0);
}
