/**
 * The SDK through a broker outage (integration, private Kafka on 29092: the shared broker is never touched).
 * A steady stream is logged to two topics while the broker is SIGKILLed and kept down for 30 s, then started
 * again on the same data directory. With a spool, every event log() accepted arrives exactly once; without,
 * exactly the events counted as dropped are missing, and nothing arrives twice.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { Kafka, logLevel } from 'kafkajs';
import { createApiLogger, type ApiLogger } from '../../producer/apiLogger.ts';
import { SyntheticEvents } from '../../producer/syntheticEvents.ts';
import { ensureTopic } from '../../producer/topic.ts';
import { createKafka } from '../../runtime/kafka.ts';
import { apiCallTypeV2 } from '../../schemas/apiCall.ts';
import { HEADER_SIZE } from '../../schemas/wire.ts';
import { kafkaService } from '../../stack/services.ts';
import { startService, stopService } from '../../stack/stack.ts';
import { stack, uniqueName } from './pipeline.ts';

const broker = kafkaService({ id: 'kafka-producer-test', port: 29092, controllerPort: 29093 });
const brokers = [broker.endpoint];
const OUTAGE_MS = 30_000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
let spoolDir: string;

beforeAll(async () => {
  spoolDir = mkdtempSync(join(tmpdir(), 'apilog-spool-'));
  await startService(broker, { verbose: false });
}, 180_000);

afterAll(async () => {
  await stopService(broker, 'SIGTERM');
  rmSync(spoolDir, { recursive: true, force: true });
}, 60_000);

/** Every event_id on the topic, with how often it occurs. */
async function readIds(topic: string, expected: number, timeoutMs = 60_000): Promise<Map<string, number>> {
  const kafka = new Kafka({ clientId: 'apilog-outage-check', brokers, logLevel: logLevel.NOTHING });
  const consumer = kafka.consumer({ groupId: uniqueName('outage-check') });
  const ids = new Map<string, number>();
  let total = 0;
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await consumer.run({
    eachMessage: async ({ message }) => {
      const event = apiCallTypeV2.fromBuffer(message.value!.subarray(HEADER_SIZE)) as { event_id: string };
      ids.set(event.event_id, (ids.get(event.event_id) ?? 0) + 1);
      total++;
    },
  });
  const deadline = Date.now() + timeoutMs;
  while (total < expected && Date.now() < deadline) await sleep(200);
  await sleep(1500); // room for a duplicate to show up
  await consumer.disconnect();
  return ids;
}

interface Stream {
  readonly logger: ApiLogger;
  readonly accepted: string[];
  readonly refused: string[];
}

test('broker down 30 s: with the spool every event arrives exactly once; without, missing = dropped', async () => {
  const admin = createKafka({ brokers, clientId: 'apilog-outage-admin' });
  const withSpool = uniqueName('outage_spool');
  const withoutSpool = uniqueName('outage_nospool');
  await ensureTopic(admin, { topic: withSpool, partitions: 3 });
  await ensureTopic(admin, { topic: withoutSpool, partitions: 3 });

  const common = { brokers, registry: stack().registry, maxQueuedEvents: 500, retryMaxMs: 1000, lingerMs: 5, closeTimeoutMs: 30_000 } as const;
  const streams: Stream[] = [
    { logger: await createApiLogger({ ...common, topic: withSpool, spool: { dir: spoolDir } }), accepted: [], refused: [] },
    { logger: await createApiLogger({ ...common, topic: withoutSpool, compression: 'gzip' }), accepted: [], refused: [] },
  ];
  const events = new SyntheticEvents({ apis: 12, seed: 7 });
  // A steady stream: 20 events per stream every 50 ms (400/s each).
  const tick = setInterval(() => {
    for (const s of streams) {
      for (let i = 0; i < 20; i++) {
        const e = events.next();
        (s.logger.log(e) === true ? s.accepted : s.refused).push(e.event_id);
      }
    }
  }, 50);

  await sleep(3000);
  await stopService(broker, 'SIGKILL');
  await sleep(OUTAGE_MS);
  await startService(broker, { verbose: false });
  await sleep(3000);
  clearInterval(tick);

  // What the SDK counted, if a stream does not settle: the failure says which one and where it stands.
  for (const [i, s] of streams.entries()) {
    expect(await s.logger.flush(60_000), `stream ${i === 0 ? 'with' : 'without'} spool not flushed in 60 s: ${JSON.stringify(s.logger.metrics())}`).toBe(true);
  }
  const [spooled, dropping] = [await streams[0]!.logger.close(), await streams[1]!.logger.close()];

  // With the spool: nothing refused, the outage went through the spool, every accepted event exactly once.
  const a = streams[0]!;
  expect({ refused: a.refused.length, metrics: spooled }).toMatchObject({ refused: 0 });
  expect(spooled.spooled).toBeGreaterThan(0);
  expect(spooled.retries).toBeGreaterThan(0);
  const idsA = await readIds(withSpool, a.accepted.length);
  expect([...idsA.values()].filter((n) => n > 1).length).toBe(0);
  expect(idsA.size).toBe(a.accepted.length);
  for (const id of a.accepted) expect(idsA.has(id)).toBe(true);

  // Without: the queue filled and dropped; what is missing is exactly what log() refused, counted as dropped.
  const b = streams[1]!;
  expect(dropping.dropped).toBeGreaterThan(0);
  expect(dropping.dropped).toBe(b.refused.length);
  const idsB = await readIds(withoutSpool, b.accepted.length);
  expect([...idsB.values()].filter((n) => n > 1).length).toBe(0);
  expect(idsB.size).toBe(b.accepted.length);
  for (const id of b.refused) expect(idsB.has(id)).toBe(false);
  console.info(`outage: spool ${a.accepted.length} accepted, ${spooled.spooled} via spool, ${spooled.retries} retries; ` +
    `no spool ${b.accepted.length} accepted, ${dropping.dropped} dropped, ${idsB.size} arrived`);
  expect(idsB.size + dropping.dropped).toBe(b.accepted.length + b.refused.length);
}, 170_000);
