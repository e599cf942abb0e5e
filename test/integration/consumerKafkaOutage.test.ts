/**
 * The broker restarts under a busy consumer (integration, `apilog consume` as operators run it, a PRIVATE single-node
 * Kafka on port 39292 that the test SIGKILLs, the shared registry, ClickHouse behind a proxy that holds inserts,
 * test/faults/tcpProxy.ts). A batch's insert waits at the proxy while the only broker is killed, then lands, so the
 * commit after it meets the outage; the broker stays down longer than kafkajs's own restarts last. The consumer must
 * stay up, join the group again when Kafka is back, and store every record, before, during and after, once.
 *
 * What the crash test caught in CI (a consumer exiting with code 70 on "Failed to find group coordinator", which
 * kafkajs raises as non-retriable when the coordinator's broker resets the connection under requests in flight)
 * depends on a request being in flight at the very moment of the kill; this test does not hit that moment every
 * time (it passes on the code before the fix too). test/unit/kafkaOutage.test.ts pins the classification, and the
 * crash test now prints why any consumer exited.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureApiCallsTable } from '../../clickhouse/apiCallsTable.ts';
import { ClickHouseServerSink } from '../../clickhouse/serverSink.ts';
import { deadLetterTopicFor } from '../../consumer/deadLetters.ts';
import { ApiCallProducer } from '../../producer/apiCallProducer.ts';
import { SyntheticEvents } from '../../producer/syntheticEvents.ts';
import { ensureTopic } from '../../producer/topic.ts';
import { createKafka } from '../../runtime/kafka.ts';
import { PROJECT_ROOT } from '../../stack/endpoints.ts';
import { TcpProxy, isInsertRequest } from '../faults/tcpProxy.ts';
import { kafkaService } from '../../stack/services.ts';
import { startService, stopService } from '../../stack/stack.ts';
import { countRows, logger, registryClient, stack, uniqueName } from './pipeline.ts';

const broker = kafkaService({ id: 'kafka-consumer-outage', port: 39292, controllerPort: 39293 });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const kafka = () => createKafka({ brokers: [broker.endpoint], clientId: 'apilog-test', logger });

async function produceTo(topic: string, n: number, seed: number): Promise<void> {
  const producer = new ApiCallProducer({ kafka: kafka(), registry: registryClient(), topic });
  await producer.connect();
  await producer.send(new SyntheticEvents({ seed, startMs: Date.UTC(2026, 11, 2) }).take(n));
  await producer.disconnect();
}

describe('the only broker restarts under a running consumer (integration, private broker)', () => {
  beforeAll(async () => {
    await startService(broker, { verbose: false });
  }, 180_000);

  afterAll(async () => {
    await stopService(broker, 'SIGTERM');
  }, 60_000);

  it('a commit that meets the outage: the consumer joins again when Kafka is back, and lands every record once', async () => {
    const topic = uniqueName('it-outage');
    const table = uniqueName('outage');
    await ensureTopic(kafka(), { topic, partitions: 2 });
    await ensureTopic(kafka(), { topic: deadLetterTopicFor(topic), partitions: 1 });
    const sink = new ClickHouseServerSink({ url: stack().clickhouse });
    await ensureApiCallsTable(sink, table);
    const proxy = await TcpProxy.inFrontOf(stack().clickhouse);
    const consumer = spawn(process.execPath, [
      join(PROJECT_ROOT, 'bin', 'apilog.js'), 'consume', '--brokers', broker.endpoint, '--registry', stack().registry,
      '--clickhouse', proxy.url, '--topic', topic, '--table', table, '--group', uniqueName('group'),
      '--metrics-port', '0', '--batch-age-ms', '200', '--session-timeout-ms', '6000', '--heartbeat-interval-ms', '1000',
      '--rebalance-timeout-ms', '10000',
    ], { cwd: PROJECT_ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    consumer.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    let exitCode: number | null | undefined;
    const exited = new Promise<void>((r) => consumer.once('exit', (code) => ((exitCode = code), r())));
    const waitRows = async (n: number, what: string) => {
      const deadline = Date.now() + 90_000;
      while ((await countRows(sink, table)) < n && exitCode === undefined && Date.now() < deadline) await sleep(250);
      expect(exitCode, `the consumer exited ${what}: ${stderr.slice(-1200)}`).toBeUndefined();
      expect(await countRows(sink, table), what).toBe(n);
    };
    try {
      await produceTo(topic, 1000, 1);
      await waitRows(1000, 'before the outage');
      // The next batch's insert waits at the proxy while the only broker goes away, then lands; the commit after it
      // meets the outage. The broker stays down longer than kafkajs's restarts last, then comes back.
      proxy.holdWhen = isInsertRequest;
      await produceTo(topic, 1000, 2);
      const deadline = Date.now() + 30_000;
      while (proxy.waitingComplete === 0 && Date.now() < deadline) await sleep(100);
      expect(proxy.waitingComplete, 'an insert waiting at the proxy').toBeGreaterThan(0);
      await stopService(broker, 'SIGKILL');
      proxy.holdWhen = () => false;
      proxy.release();
      await sleep(12_000);
      expect(exitCode, `the consumer exited during the outage: ${stderr.slice(-1200)}`).toBeUndefined();
      await startService(broker, { verbose: false });
      await produceTo(topic, 1000, 3);
      await waitRows(3000, 'after the outage');
      const [u] = await sink.query<{ n: string | number }>(`SELECT uniqExact(_partition, _offset) AS n FROM ${table}`);
      expect(Number(u?.n)).toBe(3000);
    } finally {
      consumer.kill('SIGKILL');
      await exited;
      await sink.close();
      await proxy.close();
    }
  }, 240_000);
});
