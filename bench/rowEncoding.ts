/**
 * `npx tsx bench/rowEncoding.ts [--events N] [--rounds R]`: the consumer's per-event encoding cost alone, no Kafka and
 * no ClickHouse: Confluent-framed Avro events → row bytes in a batch buffer, for each table (current and legacy
 * migrations, columns read from an embedded engine) and each encoder, in turn in one process (medians of R rounds):
 * - JSON lines: avsc decodes the record, the RowWriter builds the line (JSONCompactEachRow on the current table,
 *   JSONEachRow on the legacy one), the batch stores its UTF-8;
 * - RowBinary: the transcoder (consumer/rowBinary.ts) from the Avro bytes.
 * Prints ns/event and the ratio to the JSON path; last line one JSON object.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { ChdbSink } from '../clickhouse/chdbSink.ts';
import { PartitionBatch } from '../consumer/partitionBatch.ts';
import type { RowEncoder } from '../consumer/rowBinary.ts';
import { TableWriter } from '../consumer/tableWriter.ts';
import { SyntheticEvents } from '../producer/syntheticEvents.ts';
import { apiCallTypeV1 } from '../schemas/apiCall.ts';
import { migrate, type Dialect } from '../clickhouse/migrations.ts';
import { frame } from '../schemas/wire.ts';

const program = new Command('bench:row-encoding')
  .option('--events <n>', 'events per round', (v) => Number(v), 200_000)
  .option('--rounds <n>', 'rounds (medians reported)', (v) => Number(v), 5);
program.parse();
const { events, rounds } = program.opts<{ events: number; rounds: number }>();

const values = new SyntheticEvents({ seed: 7, startMs: Date.UTC(2026, 10, 28), stepMs: 3 })
  .take(events)
  .map((e) => frame(1, apiCallTypeV1.toBuffer(e)));
const dir = mkdtempSync(join(tmpdir(), 'apilog-bench-encoding-'));
const sink = new ChdbSink(dir);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;

const offsets = values.map((_, i) => String(i)); // kafkajs hands the consumer offsets as strings

/**
 * ns per event to encode every value into a batch, a new one every 50,000 rows sized like the last, as the
 * consumer does.
 */
function run(encoder: RowEncoder): number {
  const t0 = process.hrtime.bigint();
  let batch = new PartitionBatch('api-calls', 0);
  for (let i = 0; i < values.length; i++) {
    if (batch.rows === 50_000) batch = new PartitionBatch('api-calls', 0, Math.ceil(batch.bytes * 1.1));
    batch.addEncoded(i, 0, encoder, values[i]!, 0, offsets[i]!);
  }
  return Number(process.hrtime.bigint() - t0) / values.length;
}

const results: Record<string, number> = {};
try {
  for (const dialect of ['current', 'legacy'] as Dialect[]) {
    const table = `enc_${dialect}`;
    await migrate(sink, { table, dialect });
    const encoders: [string, RowEncoder][] = [];
    for (const format of [dialect === 'current' ? 'JSONCompactEachRow' : 'JSONEachRow', 'RowBinary'] as const) {
      const writer = new TableWriter({
        describe: () => sink.describe(table), rowBinary: format === 'RowBinary', format: dialect === 'current' ? 'JSONCompactEachRow' : 'JSONEachRow',
        schemas: { url: 'bench', cachedType: () => apiCallTypeV1 },
      });
      await writer.start();
      encoders.push([format, writer.encoderFor(values[0]!)]);
    }
    const samples = new Map<string, number[]>(encoders.map(([f]) => [f, []]));
    for (let r = 0; r < rounds; r++) for (const [format, encoder] of encoders) samples.get(format)!.push(run(encoder));
    const [json, binary] = encoders.map(([f]) => median(samples.get(f)!));
    process.stderr.write(`${dialect} table: ${encoders[0]![0]} ${json!.toFixed(0)} ns/event, RowBinary ${binary!.toFixed(0)} ns/event (${(json! / binary!).toFixed(2)}x)\n`);
    results[`${dialect}_json_ns`] = Math.round(json!);
    results[`${dialect}_rowbinary_ns`] = Math.round(binary!);
  }
} finally {
  await sink.close();
  rmSync(dir, { recursive: true, force: true });
}
process.stdout.write(`${JSON.stringify({ events, ...results })}\n`);
