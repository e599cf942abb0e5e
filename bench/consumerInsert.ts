/**
 * `npx tsx bench/consumerInsert.ts [--rows N] [--runs R]`: what one consumer-sized insert costs ClickHouse itself
 * (the embedded engine, in this process), per row format and per table variant, from system.query_log.
 * The rows are the benchmark's synthetic events, decoded and written by the consumer's own row writer.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { ensureApiCallsTable } from '../clickhouse/apiCallsTable.ts';
import { ChdbSink } from '../clickhouse/chdbSink.ts';
import { RowWriter } from '../consumer/rowWriter.ts';
import { SyntheticEvents } from '../producer/syntheticEvents.ts';
import { apiCallTypeV1 } from '../schemas/apiCall.ts';

async function main(argv: string[]): Promise<void> {
  const f = new Command('consumerInsert')
    .option('--rows <n>', 'rows per insert', (v) => Number(v), 50_000)
    .option('--runs <n>', 'inserts per variant (median reported)', (v) => Number(v), 5)
    .parse(argv, { from: 'user' })
    .opts<{ rows: number; runs: number }>();
  const dir = mkdtempSync(join(tmpdir(), 'apilog-insert-'));
  const sink = new ChdbSink(join(dir, 'db'));
  const say = (line: string) => process.stderr.write(`${line}\n`);
  const tables = { rollups: 'ins_rollups', raw: 'ins_raw' } as const;
  for (const t of Object.values(tables)) await ensureApiCallsTable(sink, t);
  for (const mv of ['_1m_mv', '_1h_mv', '_clients_1h_mv']) await sink.command(`DROP VIEW ${tables.raw}${mv}`);
  const columns = await sink.describe(tables.raw);
  const writer = new RowWriter({ columns });
  const compactWriter = new RowWriter({ columns, format: 'JSONCompactEachRow' });
  if (compactWriter.layout.format !== 'JSONCompactEachRow') throw new Error(`table ${tables.raw} cannot take compact rows (a Nullable column with a non-NULL default)`);
  const gen = new SyntheticEvents({ seed: 3, startMs: Date.UTC(2026, 10, 3), stepMs: 3 });
  const lines: string[] = [];
  const compactLines: string[] = [];
  for (const [i, e] of gen.take(f.rows).entries()) {
    const record = apiCallTypeV1.fromBuffer(apiCallTypeV1.toBuffer(e)) as Record<string, unknown>;
    lines.push(writer.line(record, 'bench', i % 6, String(i)));
    compactLines.push(compactWriter.line(record, 'bench', i % 6, String(i)));
  }
  const json = Buffer.from(lines.join(''));
  const names = compactWriter.layout.columns;
  const compact = Buffer.from(compactLines.join(''));
  // RowBinary made by ClickHouse itself from the same rows (what a typed encoder would send).
  await sink.insertJsonEachRow(tables.raw, json);
  const rb = join(dir, 'rows.bin');
  const structure = columns.filter((c) => names.includes(c.name)).map((c) => `${c.name} ${c.type}`).join(', ').replace(/'/g, "\\'");
  await sink.command(`INSERT INTO FUNCTION file('${rb}', 'RowBinary', '${structure}') SELECT ${names.join(', ')} FROM ${tables.raw}`);
  await sink.command(`TRUNCATE TABLE ${tables.raw}`);
  say(`${f.rows} rows: JSONEachRow ${json.length} B, JSONCompactEachRow ${compact.length} B`);

  const formats: Record<string, (table: string) => Promise<void>> = {
    JSONEachRow: (t) => sink.insertJsonEachRow(t, json),
    JSONCompactEachRow: (t) => sink.insertRows(t, compact, 'JSONCompactEachRow', names),
    'RowBinary (file)': (t) => sink.command(`INSERT INTO ${t} (${names.join(', ')}) SELECT * FROM file('${rb}', 'RowBinary', '${structure}')`),
  };
  say(`${'table'.padEnd(8)} ${'format'.padEnd(20)} ${'wall ms'.padStart(8)} ${'µs/row'.padStart(7)}`);
  for (const [label, table] of Object.entries(tables)) {
    for (const [format, insert] of Object.entries(formats)) {
      const times: number[] = [];
      for (let r = 0; r < f.runs; r++) {
        const t0 = performance.now();
        await insert(table);
        times.push(performance.now() - t0);
      }
      times.sort((a, b) => a - b);
      const median = times[times.length >> 1]!;
      say(`${label.padEnd(8)} ${format.padEnd(20)} ${median.toFixed(0).padStart(8)} ${((median * 1000) / f.rows).toFixed(2).padStart(7)}`);
    }
  }
  await sink.close();
  rmSync(dir, { recursive: true, force: true });
}

main(process.argv.slice(2)).then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`consumerInsert: ${error instanceof Error ? error.stack : String(error)}\n`);
    process.exit(1);
  },
);
