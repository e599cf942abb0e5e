/**
 * `npx tsx bench/eventEncoding.ts [--events N] [--rounds R]`: what encoding one API-call event into a Confluent-framed
 * Avro message costs the SDK, no Kafka: avsc's `type.encode` (the baseline, what any Avro producer in Node uses) and
 * the SDK's FramedEncoder (schemas/avroWriter.ts, avsc for what it leaves), alternating in one process, over
 * synthetic events with version 2's fields (the SDK's default schema), as the SDK encodes them: into one scratch
 * buffer, then a copy of each message. Prints ns/event per round and the medians' ratio; last line one JSON object.
 */
import { Command } from 'commander';
import { SyntheticEvents } from '../producer/syntheticEvents.ts';
import { apiCallTypeV2, type ApiCallEventV2 } from '../schemas/apiCall.ts';
import { FramedEncoder, HEADER_SIZE } from '../schemas/wire.ts';
import { median } from './measure.ts';

const program = new Command('bench:event-encoding')
  .option('--events <n>', 'events per round', (v) => Number(v), 200_000)
  .option('--rounds <n>', 'rounds (medians reported)', (v) => Number(v), 7);
program.parse();
const { events, rounds } = program.opts<{ events: number; rounds: number }>();

const protocols = ['http', 'h2'];
// Object literals, field by field, as the middleware's buildEvent makes them: a spread followed by more fields would
// leave V8 objects in dictionary mode, slow to read for any encoder.
const values: ApiCallEventV2[] = new SyntheticEvents({ seed: 11 }).take(events).map((e, i) => ({
  event_id: e.event_id, ts: e.ts, api: e.api, method: e.method, route: e.route, path: e.path, status: e.status,
  latency_us: e.latency_us, request_bytes: e.request_bytes, response_bytes: e.response_bytes, service: e.service,
  instance: e.instance, environment: e.environment, client_id: e.client_id, client_ip: e.client_ip, user_id: e.user_id,
  tenant_id: e.tenant_id, trace_id: e.trace_id, span_id: e.span_id, error_class: e.error_class,
  error_message: e.error_message, attributes: e.attributes,
  protocol: protocols[i & 1]!,
  region: 'eu-west-1',
  retry_attempt: i % 7 === 0 ? 1 : 0,
  upstream_latency_us: i % 3 === 0 ? null : e.latency_us >> 1,
  user_agent: i % 5 === 0 ? null : 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36',
}));

/** avsc alone, framed the same way: the header, then the body encoded after it, then a copy. */
function avscEncode(): (value: ApiCallEventV2) => Buffer {
  let scratch = Buffer.alloc(4096);
  return (value) => {
    let end = apiCallTypeV2.encode(value, scratch, HEADER_SIZE);
    while (end < 0) {
      scratch = Buffer.alloc(scratch.length * 2);
      end = apiCallTypeV2.encode(value, scratch, HEADER_SIZE);
    }
    return Buffer.from(scratch.subarray(0, end));
  };
}

const encoders: Record<'avsc' | 'sdk', (value: ApiCallEventV2) => Buffer> = {
  avsc: avscEncode(),
  sdk: ((e) => (v: ApiCallEventV2) => e.encode(v))(new FramedEncoder<ApiCallEventV2>(apiCallTypeV2, 1)),
};
const times: Record<'avsc' | 'sdk', number[]> = { avsc: [], sdk: [] };
let bytes = 0;
for (let round = 0; round <= rounds; round++) {
  for (const name of round % 2 === 0 ? (['avsc', 'sdk'] as const) : (['sdk', 'avsc'] as const)) {
    const encode = encoders[name];
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < values.length; i++) bytes += encode(values[i]!).length;
    const ns = Number(process.hrtime.bigint() - t0) / values.length;
    if (round > 0) times[name].push(ns); // round 0 warms both up
    process.stderr.write(`round ${round}${round === 0 ? ' (warm-up)' : ''}: ${name} ${ns.toFixed(0)} ns/event\n`);
  }
}
const avsc = median(times.avsc);
const sdk = median(times.sdk);
process.stderr.write(`medians of ${rounds}: avsc ${avsc.toFixed(0)} ns/event, SDK ${sdk.toFixed(0)} ns/event, ratio ${(sdk / avsc).toFixed(2)} (${(bytes / (2 * (rounds + 1) * values.length)).toFixed(0)} bytes/event)\n`);
process.stdout.write(`${JSON.stringify({ events, rounds, avsc_ns_per_event: Math.round(avsc), sdk_ns_per_event: Math.round(sdk), ratio: Math.round((sdk / avsc) * 100) / 100 })}\n`);
