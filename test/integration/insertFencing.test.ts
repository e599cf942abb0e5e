/**
 * Inserts that outlive their sender (integration, the Debian ClickHouse server behind a TCP proxy that can hold
 * requests, test/faults/tcpProxy.ts). An insert request the server receives but runs late (a frozen or overloaded
 * server, a request in its socket buffer) used to land after the consumer had given up on it and sent the rows again,
 * or after the partition's next owner had read what was stored: rows doubled. The proxy makes that certain: it holds
 * the chosen insert requests, the consumers carry on, then the proxy sends the held requests to the server, which runs
 * them. Every scenario ends with every offset stored once.
 * 1. A timed-out insert, retried by the same consumer while the first attempt still waits.
 * 2. A consumer SIGKILLed while its insert waits; the next owner takes the partition over.
 * 3. A consumer retrying inserts while the group rebalances: it must stop, give the partition up in time, and its
 *    waiting attempts must not land after the new owner's.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ApiCallConsumer } from '../../consumer/apiCallConsumer.ts';
import { ClickHouseServerSink } from '../../clickhouse/serverSink.ts';
import { deadLetterTopicFor } from '../../consumer/deadLetters.ts';
import type { Sink } from '../../clickhouse/sink.ts';
import { PROJECT_ROOT } from '../../stack/endpoints.ts';
import { isInsertRequest } from '../faults/tcpProxy.ts';
import { countRows, kafkaClient, logger, proxiedScenario, registryClient, stack, type Cleanup, type ProxiedScenario } from './pipeline.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(what: string, condition: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(200);
  }
}

/** Offsets stored more than once, and offsets of [0, high) per partition missing. */
async function offsetCheck(sink: Sink, table: string, high: Map<number, number>): Promise<{ rows: number; doubled: number; missing: number }> {
  const rows = await countRows(sink, table);
  const [u] = await sink.query<{ n: string | number }>(`SELECT uniqExact(_partition, _offset) AS n FROM ${table}`);
  const expected = [...high.values()].reduce((a, b) => a + b, 0);
  return { rows, doubled: rows - Number(u?.n ?? 0), missing: expected - Number(u?.n ?? 0) };
}

async function highWatermarks(topic: string): Promise<Map<number, number>> {
  const admin = kafkaClient().admin();
  await admin.connect();
  try {
    return new Map((await admin.fetchTopicOffsets(topic)).map((p) => [p.partition, Number(p.high)]));
  } finally {
    await admin.disconnect();
  }
}


const fastTuning = { sessionTimeoutMs: 6000, heartbeatIntervalMs: 1000, rebalanceTimeoutMs: 12_000, maxBatchAgeMs: 200, retryInitialMs: 100, retryMaxMs: 500 };

/** A consumer of the scenario's group writing through `sink`, started; stopped at cleanup. */
async function startConsumer(s: ProxiedScenario, sink: Sink, cleanup: Cleanup): Promise<ApiCallConsumer> {
  const consumer = new ApiCallConsumer({
    kafka: kafkaClient(), registry: registryClient(), sink, logger, topic: s.topic, table: s.table, groupId: s.group,
    deadLetterTopic: deadLetterTopicFor(s.topic), tuning: fastTuning,
  });
  await consumer.start();
  cleanup.push(() => consumer.stop());
  return consumer;
}

/** A sink through the scenario's proxy that gives up on a request after `timeoutMs`. */
function viaProxy(s: ProxiedScenario, timeoutMs: number, cleanup: Cleanup): ClickHouseServerSink {
  const sink = new ClickHouseServerSink({ url: s.proxy.url, requestTimeoutMs: timeoutMs });
  cleanup.push(() => sink.close());
  return sink;
}

/** The server runs what the proxy held; then every offset must be stored once. */
async function releaseAndCheck(s: ProxiedScenario, n: number): Promise<void> {
  s.proxy.release();
  await sleep(3000);
  expect(await offsetCheck(s.sink, s.table, await highWatermarks(s.topic))).toEqual({ rows: n, doubled: 0, missing: 0 });
}

describe('inserts that wait at the server never land twice (integration, ClickHouse server behind a holding proxy)', () => {
  const cleanup: Cleanup = [];
  afterEach(async () => {
    for (const step of cleanup.splice(0).reverse()) await step().catch(() => undefined);
  });

  it('a timed-out insert, retried while the first attempt still waits, is stored once', async () => {
    const n = 3000;
    const s = await proxiedScenario('fence-timeout', n, 1, cleanup);
    let holdNext = true;
    s.proxy.holdWhen = (head) => {
      if (!holdNext || !isInsertRequest(head)) return false;
      holdNext = false; // only the first insert waits; its retry goes through
      return true;
    };
    await startConsumer(s, viaProxy(s, 2000, cleanup), cleanup);
    await until('the rows after the retry', async () => (await countRows(s.sink, s.table)) >= n);
    expect(s.proxy.heldCount).toBe(1);
    expect(s.proxy.waiting).toBe(1);
    // The server now gets the first attempt, which the consumer gave up on long ago.
    await releaseAndCheck(s, n);
  });

  it('an insert of a SIGKILLed consumer, run by the server after the next owner took over, is stored once', async () => {
    const n = 3000;
    const s = await proxiedScenario('fence-orphan', n, 1, cleanup);
    const { topic, table, group, proxy } = s;
    proxy.holdWhen = isInsertRequest; // every insert of the first consumer waits
    const first = spawn(process.execPath, [
      join(PROJECT_ROOT, 'bin', 'apilog.js'), 'consume', '--brokers', stack().brokers, '--registry', stack().registry,
      '--clickhouse', proxy.url, '--topic', topic, '--table', table, '--group', group, '--metrics-port', '0',
      '--batch-age-ms', '200', '--session-timeout-ms', '6000', '--heartbeat-interval-ms', '1000', '--rebalance-timeout-ms', '12000',
    ], { cwd: PROJECT_ROOT, stdio: 'ignore' });
    const exited = new Promise((r) => first.once('exit', r));
    cleanup.push(async () => void first.kill('SIGKILL'));
    await until('the first consumer to send a whole insert', async () => proxy.waitingComplete > 0);
    first.kill('SIGKILL');
    await exited;
    // The next owner: straight to the server.
    await startConsumer(s, s.sink, cleanup);
    await until('the next owner to store the rows', async () => (await countRows(s.sink, table)) >= n, 90_000);
    await releaseAndCheck(s, n);
  });

  it('a consumer retrying while the group rebalances gives its partitions up in time, and its waiting inserts never land', async () => {
    const n = 4000;
    const s = await proxiedScenario('fence-rebalance', n, 2, cleanup);
    const { group, proxy } = s;
    proxy.holdWhen = isInsertRequest; // the first consumer's inserts all wait: it retries on and on
    await startConsumer(s, viaProxy(s, 1500, cleanup), cleanup);
    await until('the first consumer to retry', async () => proxy.heldCount >= 2);
    const admin = kafkaClient().admin();
    await admin.connect();
    cleanup.push(() => admin.disconnect());
    const before = (await admin.describeGroups([group])).groups[0]?.members.map((m) => m.memberId) ?? [];
    expect(before).toHaveLength(1);
    // A second member joins: the group rebalances while the first one is in its retry loop.
    await startConsumer(s, s.sink, cleanup);
    // The first member rejoins within the rebalance timeout (it stopped retrying), so the group keeps both, and the
    // first one keeps its member id: it was not expelled for missing the rebalance.
    await until('both members in a stable group', async () => {
      const { groups } = await admin.describeGroups([group]);
      return groups[0]?.state === 'Stable' && groups[0].members.length === 2;
    }, 40_000);
    const after = (await admin.describeGroups([group])).groups[0]?.members.map((m) => m.memberId) ?? [];
    expect(after).toContain(before[0]);
    // From now on the first consumer's inserts go through; what it sent before still waits, then runs.
    proxy.holdWhen = () => false;
    await until('every row', async () => (await countRows(s.sink, s.table)) >= n, 90_000);
    expect(proxy.waiting).toBeGreaterThan(0);
    await releaseAndCheck(s, n);
    const { groups } = await admin.describeGroups([group]);
    expect(groups[0]?.members.length).toBe(2);
  });
});
