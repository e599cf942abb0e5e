/** Small measuring helpers shared by the benchmarks. */
import { readFileSync } from 'node:fs';
import { constants, PerformanceObserver } from 'node:perf_hooks';
import type { Sink } from '../clickhouse/sink.ts';

/**
 * CPU time (user + system, µs) of this process's main thread alone, the one that runs the caller's JavaScript, from
 * /proc (Linux; clock ticks of 10 ms, so measure seconds, not milliseconds). NaN where /proc is not there.
 * process.cpuUsage() counts every thread: V8's helpers, libuv's pool and worker threads.
 */
export function mainThreadCpuUs(): number {
  try {
    const stat = readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) * 10_000;
  } catch {
    return Number.NaN;
  }
}

/** The median (the mean of the middle two for an even count). */
export function median(values: readonly number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

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

/** Garbage collections seen on the main thread since `gcCounter()` was called: count and pause time by kind. */
export interface GcCounts {
  readonly minor: number;
  readonly minorMs: number;
  readonly major: number;
  readonly majorMs: number;
}

/**
 * Counts the main thread's garbage collections (perf_hooks 'gc' entries: scavenges as minor, mark-compacts as
 * major) until `stop()`. The pause times leave out the work V8's helper threads do alongside.
 */
export function gcCounter(): { stop(): Promise<GcCounts> } {
  const counts = { minor: 0, minorMs: 0, major: 0, majorMs: 0 };
  const observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      const kind = (entry as PerformanceEntry & { detail?: { kind?: number } }).detail?.kind;
      if (kind === constants.NODE_PERFORMANCE_GC_MINOR) {
        counts.minor++;
        counts.minorMs += entry.duration;
      } else if (kind === constants.NODE_PERFORMANCE_GC_MAJOR) {
        counts.major++;
        counts.majorMs += entry.duration;
      }
    }
  });
  observer.observe({ entryTypes: ['gc'] });
  return {
    // Entries are delivered asynchronously: a turn of the event loop lets the last ones arrive.
    stop: () => new Promise((resolve) => setImmediate(() => {
      observer.disconnect();
      resolve({ ...counts });
    })),
  };
}
