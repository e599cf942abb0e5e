/**
 * The local cluster (integration, `npm run stack -- up --cluster`, stack/cluster.ts): three KRaft Kafka nodes with
 * replicated topics, ZooKeeper, two ClickHouse 18.16 replicas (its registry is not needed: the stack's serves). Started
 * by this file when they do not run (and stopped again at the end), used as they are when a developer's cluster runs.
 *
 * And the producer SDK across a leader change: a steady stream through createApiLogger (idempotent producer, acks
 * from all in-sync replicas, RF 3, min.insync.replicas 2) while the leader of a partition is SIGKILLed and started
 * again; every event is in the topic exactly once, and the SDK's metrics show the retries.
 */
import { readFileSync } from 'node:fs';
import { ConfigResourceTypes, type Admin, type PartitionMetadata } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClickHouseServerSink } from '../../clickhouse/serverSink.ts';
import { createApiLogger } from '../../producer/apiLogger.ts';
import { SyntheticEvents } from '../../producer/syntheticEvents.ts';
import { ensureTopic } from '../../producer/topic.ts';
import { apiCallTypeV2, type ApiCallEvent } from '../../schemas/apiCall.ts';
import { HEADER_SIZE } from '../../schemas/wire.ts';
import { createKafka } from '../../runtime/kafka.ts';
import { CLUSTER_MIN_INSYNC_REPLICAS, CLUSTER_REPLICATION_FACTOR, writeClusterEnv, type ClusterStack } from '../../stack/cluster.ts';
import { startService, statusCluster, stopService } from '../../stack/stack.ts';
import { pidOf, useClusterServices, type ClusterServices } from './clusterServices.ts';
import { logger, stack, uniqueName } from './pipeline.ts';
import { waitFor } from './processes.ts';

let services: ClusterServices;
let cluster: ClusterStack;
let admin: Admin;

// Not its registry (a third JVM to start): the stack's serves the SDK here.
beforeAll(async () => {
  services = await useClusterServices((c) => [c.zookeeper, ...c.brokers, ...c.clickhouse]);
  cluster = services.cluster;
  admin = createKafka({ brokers: [...cluster.endpoints.brokers], clientId: 'apilog-test', logger }).admin();
  await admin.connect();
}, 240_000);

afterAll(async () => {
  await admin?.disconnect();
  await services?.stop();
}, 120_000);

describe('the local cluster (integration)', () => {
  it('status reports each process with its memory; .stack/cluster/env names every broker and replica', async () => {
    // Each health probe is one request with a 2 s timeout: on two busy cores one can miss. Asked again for up to
    // 30 s; a service that stays unhealthy (or a wrong pid, or no memory figure) still fails.
    const started = [cluster.zookeeper, ...cluster.brokers, ...cluster.clickhouse]; // not the registry: this file does not start it
    const unhealthy = (rows: Awaited<ReturnType<typeof statusCluster>>) => rows.filter((r) => !r.healthy && started.some((s) => s.id === r.id));
    let rows = await statusCluster();
    for (let tries = 0; tries < 15 && unhealthy(rows).length > 0; tries++) {
      process.stderr.write(`cluster status: not healthy yet: ${unhealthy(rows).map((r) => r.id).join(', ')}\n`);
      await new Promise((r) => setTimeout(r, 2000));
      rows = await statusCluster();
    }
    for (const service of started) {
      const row = rows.find((r) => r.id === service.id)!;
      expect(row).toMatchObject({ healthy: true, pid: pidOf(service) });
      expect(row.rss).toBeGreaterThan(10 * 1048576);
    }
    const env = readFileSync(writeClusterEnv(cluster), 'utf8');
    expect(env).toMatch(/^KAFKA_BROKERS=127\.0\.0\.1:53092,127\.0\.0\.1:53192,127\.0\.0\.1:53292$/m);
    expect(env).toMatch(/^CLICKHOUSE_URL=http:\/\/127\.0\.0\.1:53123,http:\/\/127\.0\.0\.1:53223$/m);
    expect(env).toMatch(/^SCHEMA_REGISTRY_URL=http:\/\/127\.0\.0\.1:53081\/apis\/ccompat\/v7$/m);
  });

  it('Kafka: three brokers, one quorum; a topic made without a replication factor gets 3 replicas, all in sync, min.insync.replicas 2', async () => {
    const quorum = await admin.describeCluster();
    expect(quorum.brokers.map((b) => b.nodeId).sort()).toEqual([1, 2, 3]);
    expect(quorum.controller).not.toBeNull();
    const topic = uniqueName('it-cluster-rf');
    await ensureTopic(createKafka({ brokers: [...cluster.endpoints.brokers], clientId: 'apilog-test', logger }), { topic, partitions: 3 });
    // ensureTopic waited for the broker it asked; each broker applies the new topic's metadata on its own.
    let partitions: PartitionMetadata[] = [];
    expect(await waitFor(async () => {
      partitions = (await admin.fetchTopicMetadata({ topics: [topic] }).catch(() => ({ topics: [] }))).topics[0]?.partitions ?? [];
      return partitions.length === 3 && partitions.every((p) => p.isr.length === CLUSTER_REPLICATION_FACTOR);
    }, 30_000)).toBe(true);
    expect(partitions).toHaveLength(3);
    for (const p of partitions) {
      expect(p.replicas).toHaveLength(CLUSTER_REPLICATION_FACTOR);
      expect(p.isr).toHaveLength(CLUSTER_REPLICATION_FACTOR);
    }
    // Leaders spread over the brokers.
    expect(new Set(partitions.map((p) => p.leader)).size).toBe(3);
    let entries: Record<string, string> = {};
    const described = async () => {
      const configs = await admin.describeConfigs({
        includeSynonyms: false,
        resources: [{ type: ConfigResourceTypes.TOPIC, name: topic, configNames: ['min.insync.replicas', 'unclean.leader.election.enable'] }],
      });
      entries = Object.fromEntries(configs.resources[0]!.configEntries.map((e) => [e.configName, e.configValue]));
      return true;
    };
    // The broker asked may not know the topic yet either ("does not host this topic-partition").
    expect(await waitFor(() => described().catch(() => false), 30_000)).toBe(true);
    expect(entries).toEqual({ 'min.insync.replicas': String(CLUSTER_MIN_INSYNC_REPLICAS), 'unclean.leader.election.enable': 'false' });
    // The group offsets topic is replicated too: a broker lost does not lose the consumers' ledger.
    const offsets = await admin.fetchTopicMetadata({ topics: ['__consumer_offsets'] }).catch(() => undefined);
    if (offsets) for (const p of offsets.topics[0]!.partitions) expect(p.replicas).toHaveLength(CLUSTER_REPLICATION_FACTOR);
  });

  it('ClickHouse: two replicas of shard 01 with their macros; a row inserted on one is on the other', async () => {
    const [a, b] = cluster.endpoints.clickhouse.map((url) => new ClickHouseServerSink({ url })) as [ClickHouseServerSink, ClickHouseServerSink];
    try {
      const macros = async (s: ClickHouseServerSink) => Object.fromEntries((await s.query<{ macro: string; substitution: string }>('SELECT macro, substitution FROM system.macros')).map((m) => [m.macro, m.substitution]));
      expect(await macros(a)).toEqual({ replica: 'r1', shard: '01' });
      expect(await macros(b)).toEqual({ replica: 'r2', shard: '01' });
      const table = uniqueName('cluster_replication');
      const ddl = `CREATE TABLE ${table} (k UInt64) ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/default.${table}', '{replica}') ORDER BY k`;
      await a.command(ddl);
      await b.command(ddl);
      await a.insertJsonEachRow(table, Buffer.from('{"k":1}\n{"k":2}\n'));
      await b.command(`SYSTEM SYNC REPLICA ${table}`);
      expect(await b.query<{ n: string }>(`SELECT count() AS n FROM ${table}`)).toEqual([{ n: '2' }]);
      const clusters = await a.query<{ host_name: string; port: number }>(`SELECT host_name, port FROM system.clusters WHERE cluster = 'apilog' ORDER BY port`);
      expect(clusters.map((c) => c.port)).toEqual([53900, 53901]);
      await a.command(`DROP TABLE ${table}`);
      await b.command(`DROP TABLE ${table}`);
    } finally {
      await a.close();
      await b.close();
    }
  });
});

/** Every value of a topic, read from the beginning to the end it has now. */
async function readAll(topic: string): Promise<Buffer[]> {
  const kafka = createKafka({ brokers: [...cluster.endpoints.brokers], clientId: 'apilog-test', logger });
  const high = (await admin.fetchTopicOffsets(topic)).reduce((sum, p) => sum + Number(p.high), 0);
  const values: Buffer[] = [];
  const consumer = kafka.consumer({ groupId: uniqueName('read') });
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({ eachMessage: async ({ message }) => void values.push(message.value!) });
    await waitFor(() => values.length >= high, 60_000);
  } finally {
    await consumer.disconnect();
  }
  return values;
}

describe('the producer SDK across a partition leader change (integration, local cluster)', () => {
  it('a steady stream while the leader of a partition is SIGKILLed and restarted: every event arrives once, the metrics show the retries', async () => {
    const topic = uniqueName('it-cluster-leader');
    const kafka = createKafka({ brokers: [...cluster.endpoints.brokers], clientId: 'apilog-test', logger });
    await ensureTopic(kafka, { topic, partitions: 3 });
    const sdk = await createApiLogger({ brokers: cluster.endpoints.brokers, registry: stack().registry, topic, retryMaxMs: 1000 });
    const events: ApiCallEvent[] = new SyntheticEvents({ seed: 41, apis: 6 }).take(8000);
    // 400 events per second for 20 s; the leader of partition 0 is killed at 4 s and started again at 12 s.
    let next = 0;
    const stream = setInterval(() => {
      for (let i = 0; i < 20 && next < events.length; i++) expect(sdk.log(events[next++]!)).toBe(true);
    }, 50);
    try {
      await new Promise((r) => setTimeout(r, 4000));
      const leaderId = (await admin.fetchTopicMetadata({ topics: [topic] })).topics[0]!.partitions.find((p) => p.partitionId === 0)!.leader;
      const leader = cluster.brokers[leaderId - 1]!;
      const before = pidOf(leader);
      await stopService(leader, 'SIGKILL');
      const sentAtKill = sdk.metrics().sent;
      await new Promise((r) => setTimeout(r, 8000));
      await startService(leader, { verbose: false });
      expect(pidOf(leader)).not.toBe(before);
      expect(await waitFor(() => next >= events.length, 30_000)).toBe(true);
      expect(sdk.metrics().sent).toBeGreaterThan(sentAtKill); // the stream went on while the leader was down
    } finally {
      clearInterval(stream);
    }
    expect(await sdk.flush(60_000)).toBe(true);
    const metrics = sdk.metrics();
    await sdk.close();

    const ids = new Map<string, number>();
    for (const value of await readAll(topic)) {
      const id = (apiCallTypeV2.fromBuffer(value.subarray(HEADER_SIZE)) as ApiCallEvent).event_id;
      ids.set(id, (ids.get(id) ?? 0) + 1);
    }
    const doubled = [...ids.values()].filter((n) => n > 1).length;
    const missing = events.filter((e) => !ids.has(e.event_id)).length;
    expect({ inTopic: [...ids.values()].reduce((a, b) => a + b, 0), distinct: ids.size, missing, doubled }).toEqual({ inTopic: events.length, distinct: events.length, missing: 0, doubled: 0 });
    expect(metrics).toMatchObject({ queued: events.length, sent: events.length, dropped: 0, rejected: 0 });
    expect(metrics.retries).toBeGreaterThan(0);
  });
});
