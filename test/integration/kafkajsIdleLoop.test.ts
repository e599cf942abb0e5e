/**
 * kafkajs 2.2.4's request queues poll themselves while idle (runtime/kafkajsIdleLoop.ts): against the real broker,
 * a connected producer's queues must not check their (empty) pending requests over and over once they are idle,
 * and requests that do have to wait (one in flight at a time, many sends at once) must still all go out.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { Partitioners, type Producer } from 'kafkajs';
import { ensureTopic } from '../../producer/topic.ts';
import { requestQueueClass, stopIdleRequestQueueLoop } from '../../runtime/kafkajsIdleLoop.ts';
import { kafkaClient, uniqueName } from './pipeline.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('kafkajs request queues, idle and busy (real broker)', () => {
  const proto = requestQueueClass().prototype;
  const check = proto.checkPendingRequests;
  let checks = 0;
  let producer: Producer;
  let topic: string;

  beforeAll(async () => {
    topic = uniqueName('idle-loop');
    const kafka = kafkaClient(); // createKafka() stops the loop for the process
    await ensureTopic(kafka, { topic, partitions: 3 });
    producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner, maxInFlightRequests: 1 });
    await producer.connect();
    proto.checkPendingRequests = function (this: unknown) {
      checks++;
      return check.call(this);
    };
  });
  afterAll(async () => {
    proto.checkPendingRequests = check;
    await producer.disconnect();
  });

  test('stopped for kafkajs 2.2.4', () => {
    expect(stopIdleRequestQueueLoop()).toBe('stopped');
  });

  test('an idle connection does not check its empty queue again and again', async () => {
    await producer.send({ topic, messages: [{ key: 'k', value: 'v' }] });
    await sleep(100);
    checks = 0;
    await sleep(1000);
    // kafkajs 2.2.4 as shipped: ~1,000 per second per connection (a timer of negative delay re-arming itself).
    expect(checks).toBeLessThan(5);
  });

  test('sends that must wait their turn (one request in flight) all go out', async () => {
    const sends = Array.from({ length: 30 }, (_, i) => producer.send({ topic, messages: [{ key: `k${i % 3}`, value: `v${i}` }] }));
    const results = await Promise.all(sends);
    expect(results.flat().every((r) => r.errorCode === 0)).toBe(true);
    const offsets = await kafkaClient().admin().fetchTopicOffsets(topic);
    expect(offsets.reduce((n, p) => n + Number(p.high), 0)).toBe(31);
  });
});
