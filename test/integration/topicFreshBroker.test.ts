/**
 * ensureTopic on a freshly started broker (integration, private Kafka on 39192: the shared broker is never touched).
 * A CreateTopics answer comes before the broker serves the topic: until the broker has applied the creation,
 * Metadata answers UNKNOWN_TOPIC_OR_PARTITION. producerOutage.test.ts once failed so, on the topics it creates right
 * after starting its broker, on a loaded CI machine. The broker applies creations one after another, so a topic
 * created while it still sets up the previous one's partitions waits behind them: a first topic of 64 partitions
 * makes the gap certain without load (before ensureTopic waited it out, the next topic failed on 10 of 10 fresh
 * brokers).
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { Kafka, logLevel } from 'kafkajs';
import { ensureTopic } from '../../producer/topic.ts';
import { createKafka } from '../../runtime/kafka.ts';
import { DATA_DIR, kafkaService } from '../../stack/services.ts';
import { startService, stopService } from '../../stack/stack.ts';
import { uniqueName } from './pipeline.ts';

const broker = kafkaService({ id: 'kafka-topic-test', port: 39192, controllerPort: 39193 });
const dataDir = join(DATA_DIR, broker.id);

beforeAll(async () => {
  rmSync(dataDir, { recursive: true, force: true });
  await startService(broker, { verbose: false });
}, 180_000);

afterAll(async () => {
  await stopService(broker, 'SIGTERM');
  rmSync(dataDir, { recursive: true, force: true });
}, 60_000);

test('topics created one after another right after start-up are served, every partition led, when ensureTopic returns', async () => {
  const kafka = createKafka({ brokers: [broker.endpoint], clientId: 'apilog-topic-test' });
  const topics = new Map([[uniqueName('fresh_wide'), 64], [uniqueName('fresh_a'), 3], [uniqueName('fresh_b'), 3]]);
  for (const [topic, partitions] of topics) expect(await ensureTopic(kafka, { topic, partitions })).toBe(partitions);

  // What the return promises, as another client sees it at once (no retries): every partition known and led.
  const check = new Kafka({ clientId: 'apilog-topic-check', brokers: [broker.endpoint], retry: { retries: 0 }, logLevel: logLevel.NOTHING });
  const admin = check.admin();
  await admin.connect();
  try {
    const meta = await admin.fetchTopicMetadata({ topics: [...topics.keys()] });
    for (const [topic, partitions] of topics) {
      const led = meta.topics.find((t) => t.name === topic)?.partitions.filter((p) => p.leader >= 0).length;
      expect({ topic, led }).toEqual({ topic, led: partitions });
    }
  } finally {
    await admin.disconnect();
  }

  // A topic that exists is left as it is: its own partition count comes back, not the one asked for.
  const [existing, partitions] = [...topics][1]!;
  expect(await ensureTopic(kafka, { topic: existing, partitions: 5 })).toBe(partitions);
}, 90_000);
