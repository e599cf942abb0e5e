/**
 * `npm run bench:queries`: loads generated API-call events (10 million by default) into the embedded engine
 * through the real migrations (raw table + materialized rollups), then times every question of the analysts'
 * page on raw rows and on the rollups, side by side, and reports the on-disk bytes per event (system.parts).
 * Last line: {"events": N, "bytes_per_event": …, "queries": {"<name>": {"raw_ms": …, "rollup_ms": …}}}
 *
 *   npm run bench:queries -- [--events 10000000] [--days 7] [--runs 3]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ensureApiCallsTable } from '../clickhouse/apiCallsTable.ts';
import { ChdbSink } from '../clickhouse/chdbSink.ts';
import { dateTimeParam, forTable, loadAnalystQueries } from '../schemas/analystQueries.ts';
import { loadGeneratedEvents } from './generateEvents.ts';
import { bestOf, bytesOnDisk } from './measure.ts';

const { values } = parseArgs({
  options: { events: { type: 'string', default: '10000000' }, days: { type: 'string', default: '7' }, runs: { type: 'string', default: '3' } },
});
const events = Number(values.events);
const days = Number(values.days);
const runs = Number(values.runs);
for (const [name, v] of [['--events', events], ['--days', days], ['--runs', runs]] as const) {
  if (!Number.isInteger(v) || v <= 0) throw new Error(`${name} must be a positive integer`);
}

const say = (line: string) => process.stdout.write(`${line}\n`);
const HOUR = 3_600_000;
// The data ends at the last whole hour, so every window below is aligned to both rollup grains.
const endMs = Math.floor(Date.now() / HOUR) * HOUR;
const startMs = endMs - days * 24 * HOUR;
const table = 'api_calls';

const dir = mkdtempSync(join(tmpdir(), 'apilog-bench-queries-'));
const sink = new ChdbSink(dir);
try {
  await ensureApiCallsTable(sink, table);
  say(`embedded ClickHouse ${await sink.version()}; ${events.toLocaleString('en')} events over ${days} days, generated inside ClickHouse`);
  const t0 = performance.now();
  await loadGeneratedEvents(sink, table, { count: events, startMs, spanMs: endMs - startMs }, (done) => {
    process.stderr.write(`\r  loaded ${done.toLocaleString('en')}`);
  });
  process.stderr.write('\n');
  const loadS = (performance.now() - t0) / 1000;
  await sink.command(`OPTIMIZE TABLE ${table} FINAL`);
  for (const t of ['1m', '1h', 'clients_1h']) await sink.command(`OPTIMIZE TABLE ${table}_${t} FINAL`);
  const counts = await sink.query<{ n: string }>(`SELECT count() AS n FROM ${table}`);
  if (Number(counts[0]?.n) !== events) throw new Error(`expected ${events} rows, found ${counts[0]?.n}`);
  say(`load: ${loadS.toFixed(1)} s (${Math.round(events / loadS).toLocaleString('en')} events/s, raw insert plus 3 materialized views)`);

  const rawBytes = await bytesOnDisk(sink, table);
  const bytesPerEvent = rawBytes / events;
  say(`on disk: raw ${(rawBytes / 2 ** 20).toFixed(1)} MiB = ${bytesPerEvent.toFixed(1)} bytes/event`);
  for (const t of ['1m', '1h', 'clients_1h']) {
    const rows = await sink.query<{ n: string }>(`SELECT count() AS n FROM ${table}_${t}`);
    say(`         ${`${table}_${t}`.padEnd(22)} ${((await bytesOnDisk(sink, `${table}_${t}`)) / 2 ** 20).toFixed(1).padStart(7)} MiB, ${Number(rows[0]?.n).toLocaleString('en')} rows`);
  }

  say('');
  say(`${'question'.padEnd(16)} ${'window'.padStart(7)} ${'raw ms'.padStart(9)} ${'rollup ms'.padStart(10)} ${'ratio'.padStart(7)}`);
  const results: Record<string, { raw_ms: number; rollup_ms: number }> = {};
  for (const q of loadAnalystQueries()) {
    const params = { from: dateTimeParam(endMs - q.windowMs), to: dateTimeParam(endMs) };
    const raw = await bestOf(runs, () => sink.query(forTable(q.sql.raw, table), params));
    const rollup = await bestOf(runs, () => sink.query(forTable(q.sql.rollup, table), params));
    results[q.name] = { raw_ms: Number(raw.toFixed(1)), rollup_ms: Number(rollup.toFixed(1)) };
    const window = q.windowMs >= 86_400_000 ? `${q.windowMs / 86_400_000}d` : q.windowMs >= HOUR ? `${q.windowMs / HOUR}h` : `${q.windowMs / 60_000}m`;
    say(`${q.name.padEnd(16)} ${window.padStart(7)} ${raw.toFixed(1).padStart(9)} ${rollup.toFixed(1).padStart(10)} ${`${(raw / rollup).toFixed(1)}x`.padStart(7)}`);
  }

  // The consumer's exactly-once lookup, with and without the projection by_offset (0001_api_calls.sql).
  const lookup = `SELECT max(_offset) AS o FROM ${table} WHERE _topic = {topic:String} AND _partition = {p:UInt32} AND _offset >= {from:UInt64}`;
  const lookupParams = { topic: 'api-calls', p: 1, from: Math.floor(events * 0.99) };
  const withProjection = await bestOf(runs, () => sink.query(lookup, lookupParams));
  const withoutProjection = await bestOf(runs, () => sink.query(`${lookup} SETTINGS optimize_use_projections = 0`, lookupParams));
  say('');
  say(`offset lookup (WHERE _topic, _partition, _offset >= …): ${withProjection.toFixed(1)} ms with the projection, ${withoutProjection.toFixed(1)} ms without (${(withoutProjection / withProjection).toFixed(1)}x)`);
  say(JSON.stringify({ events, bytes_per_event: Number(bytesPerEvent.toFixed(1)), queries: results }));
} finally {
  await sink.close();
  rmSync(dir, { recursive: true, force: true });
}
