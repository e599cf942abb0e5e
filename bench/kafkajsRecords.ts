/**
 * `npx tsx bench/kafkajsRecords.ts`: what kafkajs's producer costs per event with its own record encoder, produce
 * request and grouping by partition, and with the lean ones (runtime/kafkajsRecords.ts, runtime/kafkajsGrouping.ts),
 * against the local broker. kafkajs takes them when its
 * produce request first loads, so each run is a child process: APILOG_KAFKAJS_RECORDS=keep (kafkajs's) and the default
 * (lean), alternating, BENCH_ROUNDS rounds (default 4). Each child connects an idempotent producer (the SDK's
 * settings, lz4) and sends BENCH_EVENTS (default 60,000) pre-encoded API-call events, BENCH_PER_SEND (default 200)
 * per send (about what the SDK's 50 ms linger gathers at 4,000 events/s), after a warm-up. It reports the process's
 * CPU per event and events/s. Medians side by side; last line one JSON object.
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Partitioners } from 'kafkajs';
import { PRODUCER_DELIVERY } from '../producer/apiCallProducer.ts';
import { SyntheticEvents } from '../producer/syntheticEvents.ts';
import { ensureTopic } from '../producer/topic.ts';
import { createKafka } from '../runtime/kafka.ts';
import { compressionType } from '../runtime/kafkaCodecs.ts';
import { leanGroupingClient } from '../runtime/kafkajsGrouping.ts';
import { leanRecordEncoding } from '../runtime/kafkajsRecords.ts';
import { apiCallTypeV1 } from '../schemas/apiCall.ts';
import { frame } from '../schemas/wire.ts';
import { LOCAL_KAFKA_BROKERS, readStackEnv } from '../stack/endpoints.ts';
import { median } from './measure.ts';

const EVENTS = Number(process.env['BENCH_EVENTS'] ?? 60_000);
const PER_SEND = Number(process.env['BENCH_PER_SEND'] ?? 200);
const ROUNDS = Number(process.env['BENCH_ROUNDS'] ?? 4);
const brokers = (process.env['KAFKA_BROKERS'] ?? readStackEnv()?.KAFKA_BROKERS ?? LOCAL_KAFKA_BROKERS).split(',');

interface Run {
  readonly encoder: string;
  readonly grouping: string;
  readonly us: number;
  readonly eps: number;
}

/** One run in this process: the encoder as the environment left it. */
async function child(): Promise<Run> {
  const kafka = createKafka({ brokers, clientId: 'bench-kafkajs-records' });
  const encoder = leanRecordEncoding();
  const grouping = leanGroupingClient();
  const topic = `bench_records_${Date.now().toString(36)}_${process.pid}`;
  await ensureTopic(kafka, { topic, partitions: 6 });
  const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner, ...PRODUCER_DELIVERY });
  await producer.connect();
  const pool = new SyntheticEvents({ apis: 20, seed: 5 }).take(PER_SEND * 20).map((e) => ({ key: e.api, value: frame(1, apiCallTypeV1.toBuffer(e)) }));
  const compression = compressionType('lz4');
  const send = (i: number) => {
    const from = (i % 20) * PER_SEND;
    return producer.send({ topic, compression, messages: pool.slice(from, from + PER_SEND) });
  };
  for (let i = 0; i < 20; i++) await send(i);
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const sends = Math.ceil(EVENTS / PER_SEND);
  for (let i = 0; i < sends; i++) await send(i);
  const cpu = process.cpuUsage(cpu0);
  const seconds = (performance.now() - t0) / 1000;
  await producer.disconnect();
  return { encoder, grouping, us: (cpu.user + cpu.system) / (sends * PER_SEND), eps: (sends * PER_SEND) / seconds };
}

function runChild(keep: boolean): Run {
  const env = { ...process.env, BENCH_RECORDS_CHILD: '1' } as NodeJS.ProcessEnv;
  if (keep) env['APILOG_KAFKAJS_RECORDS'] = 'keep';
  else delete env['APILOG_KAFKAJS_RECORDS'];
  const out = execFileSync(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url)], { env, encoding: 'utf8' });
  return JSON.parse(out.trim().split('\n').pop()!) as Run;
}

async function main(): Promise<void> {
  if (process.env['BENCH_RECORDS_CHILD'] === '1') {
    process.stdout.write(`${JSON.stringify(await child())}\n`);
    return;
  }
  const say = (line: string) => process.stderr.write(`${line}\n`);
  say(`bench:kafkajs-records — ${EVENTS} events, ${PER_SEND} per send, lz4, idempotent, ${ROUNDS} rounds, brokers ${brokers.join(',')}`);
  const kept: Run[] = [];
  const lean: Run[] = [];
  for (let round = 1; round <= ROUNDS; round++) {
    const order = round % 2 === 1 ? [true, false] : [false, true];
    for (const keep of order) {
      const run = runChild(keep);
      const state = `${run.encoder}; ${run.grouping}`;
      if (state !== (keep ? 'kept: by APILOG_KAFKAJS_RECORDS; kept: by APILOG_KAFKAJS_RECORDS' : 'lean; lean')) throw new Error(`the child ran with ${state}`);
      (keep ? kept : lean).push(run);
      say(`round ${round}: ${keep ? "kafkajs's encoding" : 'lean encoding     '} ${run.us.toFixed(2)} µs/event, ${Math.round(run.eps)} events/s`);
    }
  }
  const m = (runs: Run[], key: 'us' | 'eps') => median(runs.map((r) => r[key]));
  say(`medians of ${ROUNDS}:             CPU µs/event   events/s`);
  say(`kafkajs's encoding        ${m(kept, 'us').toFixed(2).padStart(12)} ${String(Math.round(m(kept, 'eps'))).padStart(10)}`);
  say(`lean encoding             ${m(lean, 'us').toFixed(2).padStart(12)} ${String(Math.round(m(lean, 'eps'))).padStart(10)}   CPU ratio ${(m(lean, 'us') / m(kept, 'us')).toFixed(2)}`);
  process.stdout.write(
    `${JSON.stringify({ events: EVENTS, per_send: PER_SEND, kafkajs_us_per_event: Math.round(m(kept, 'us') * 100) / 100, lean_us_per_event: Math.round(m(lean, 'us') * 100) / 100, kafkajs_eps: Math.round(m(kept, 'eps')), lean_eps: Math.round(m(lean, 'eps')), cpu_ratio: Math.round((m(lean, 'us') / m(kept, 'us')) * 100) / 100 })}\n`,
  );
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  },
);
