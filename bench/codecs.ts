/**
 * `npm run bench:codecs [-- --batch N --rounds R]`: what each Kafka codec costs on our events, offline (no broker).
 * Batches of N realistic API-call events (SyntheticEvents, Avro in Confluent framing, key = API name) are laid out
 * as kafkajs lays out a record batch's records, then compressed and decompressed by the very codecs kafkajs uses
 * in our processes (runtime/kafkaCodecs.ts), one at a time on this thread. Per codec: bytes per event on the wire,
 * ratio to uncompressed, and the median over R rounds of compress and decompress time per event.
 * Last line: one JSON object.
 */
import { createRequire } from 'node:module';
import { Command } from 'commander';
import kafkajs from 'kafkajs';
import { SyntheticEvents } from '../producer/syntheticEvents.ts';
import { CODEC_IDS, registerKafkaCodecs } from '../runtime/kafkaCodecs.ts';
import { apiCallTypeV1 } from '../schemas/apiCall.ts';
import { FramedEncoder } from '../schemas/wire.ts';

const program = new Command('bench:codecs')
  .option('--batch <n>', 'events per record batch', (v) => Number(v), 1000)
  .option('--batches <n>', 'distinct batches per round', (v) => Number(v), 20)
  .option('--rounds <n>', 'rounds (medians reported)', (v) => Number(v), 7);
program.parse();
const { batch, batches, rounds } = program.opts<{ batch: number; batches: number; rounds: number }>();

// kafkajs's record encoder: the bytes a codec gets are exactly the ones a producer hands it.
const require = createRequire(import.meta.url);
const Record = require('kafkajs/src/protocol/recordBatch/record/v0') as (r: { offsetDelta: number; timestampDelta: number; key: Buffer; value: Buffer }) => unknown;
const Encoder = require('kafkajs/src/protocol/encoder') as new () => { writeEncoderArray(a: unknown[]): unknown; buffer: Buffer };

interface Codec {
  compress(encoder: { buffer: Buffer }): Promise<Buffer>;
  decompress(buffer: Buffer): Promise<Buffer>;
}
registerKafkaCodecs();
const table = kafkajs.CompressionCodecs as unknown as Record<number, () => Codec>;

const events = new SyntheticEvents({ seed: 3, apis: 20, startMs: Date.UTC(2026, 10, 28), stepMs: 2 });
const encoder = new FramedEncoder(apiCallTypeV1, 1);
const inputs: { buffer: Buffer }[] = [];
for (let b = 0; b < batches; b++) {
  const records: unknown[] = [];
  for (let i = 0; i < batch; i++) {
    const event = events.next();
    records.push(Record({ offsetDelta: i, timestampDelta: i * 2, key: Buffer.from(event.api), value: encoder.encode(event) }));
  }
  const recordsEncoder = new Encoder();
  recordsEncoder.writeEncoderArray(records);
  inputs.push({ buffer: recordsEncoder.buffer });
}
const rawBytes = inputs.reduce((n, i) => n + i.buffer.length, 0);
const perEvent = (ns: bigint) => Number(ns) / (batch * batches);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;

const results: Record<string, { bytesPerEvent: number; ratio: number; compressNsPerEvent: number; decompressNsPerEvent: number }> = {};
for (const [name, id] of Object.entries(CODEC_IDS)) {
  const codec = table[id]!();
  const compressNs: number[] = [];
  const decompressNs: number[] = [];
  let compressed: Buffer[] = [];
  for (let r = 0; r < rounds; r++) {
    let t0 = process.hrtime.bigint();
    compressed = [];
    for (const input of inputs) compressed.push(await codec.compress(input));
    compressNs.push(perEvent(process.hrtime.bigint() - t0));
    t0 = process.hrtime.bigint();
    for (const c of compressed) await codec.decompress(c);
    decompressNs.push(perEvent(process.hrtime.bigint() - t0));
  }
  for (let i = 0; i < inputs.length; i++) {
    if (!(await codec.decompress(compressed[i]!)).equals(inputs[i]!.buffer)) throw new Error(`${name} did not round-trip`);
  }
  const bytes = compressed.reduce((n, c) => n + c.length, 0);
  results[name] = {
    bytesPerEvent: Number((bytes / (batch * batches)).toFixed(1)),
    ratio: Number((bytes / rawBytes).toFixed(3)),
    compressNsPerEvent: Math.round(median(compressNs)),
    decompressNsPerEvent: Math.round(median(decompressNs)),
  };
}

const say = (line: string) => process.stdout.write(`${line}\n`);
say(`${batches} batches of ${batch} events, ${(rawBytes / (batch * batches)).toFixed(1)} bytes/event uncompressed (records as kafkajs lays them out); medians of ${rounds} rounds`);
say('codec     bytes/event   ratio   compress ns/event   decompress ns/event');
for (const [name, r] of Object.entries(results)) {
  say(`${name.padEnd(9)} ${String(r.bytesPerEvent).padStart(11)}   ${r.ratio.toFixed(3)}   ${String(r.compressNsPerEvent).padStart(17)}   ${String(r.decompressNsPerEvent).padStart(19)}`);
}
say(JSON.stringify({ batch, batches, rounds, uncompressedBytesPerEvent: Number((rawBytes / (batch * batches)).toFixed(1)), codecs: results }));
