/**
 * ClickHouse replicas (integration: two Debian 18.16 servers replicating a ReplicatedMergeTree through ZooKeeper, the
 * local cluster's; Kafka and the registry of the stack): migrations on every replica, and exactly once through them.
 *
 * The lagging replica: an insert is acknowledged by replica A while replica B has not fetched it (B's fetches are
 * stopped, or A is SIGKILLed before B could fetch), the consumer is killed before it commits, and the partition's next
 * owner writes through B, which does not hold the rows. Before replicas were known to the consumer, the next owner
 * read B's stored offsets (none), sent the rows again in its own batch, and once B caught up every row of the first
 * batch was there twice (4,000 rows for 3,000 events). Now the next owner forms the first batch again as it was and
 * sends it whole: B's insert is the same block, whose id is in ZooKeeper, and is dropped.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ClickHouseServerSink } from '../../clickhouse/serverSink.ts';
import { deadLetterTopicFor } from '../../consumer/deadLetters.ts';
import type { Sink } from '../../clickhouse/sink.ts';
import type { Service } from '../../stack/services.ts';
import { SyntheticEvents } from '../../producer/syntheticEvents.ts';
import { ensureTopic } from '../../producer/topic.ts';
import { startService, stopService } from '../../stack/stack.ts';
import { pidOf, useClusterServices, type ClusterServices } from './clusterServices.ts';
import { kafkaClient, produce, stack, uniqueName } from './pipeline.ts';
import { APILOG, run, start, waitFor, type Started } from './processes.ts';

const N = 3000;
const FAST = ['--session-timeout-ms', '6000', '--heartbeat-interval-ms', '1000', '--rebalance-timeout-ms', '12000', '--batch-age-ms', '200', '--metrics-port', '0'];

let services: ClusterServices;
let replicaA: Sink;
let replicaB: Sink;
let urlA: string;
let urlB: string;

beforeAll(async () => {
  services = await useClusterServices((c) => [c.zookeeper, ...c.clickhouse]);
  [urlA, urlB] = services.cluster.endpoints.clickhouse as [string, string];
  replicaA = new ClickHouseServerSink({ url: urlA });
  replicaB = new ClickHouseServerSink({ url: urlB });
});

/** Tables the tests made, dropped on both replicas at the end (their ZooKeeper nodes go with the last replica). */
const tables: string[] = [];

afterAll(async () => {
  for (const table of tables) for (const replica of [replicaA, replicaB]) await replica?.command(`DROP TABLE IF EXISTS ${table}`).catch(() => undefined);
  await replicaA?.close();
  await replicaB?.close();
  await services?.stop();
});

const count = async (sink: Sink, table: string) => Number((await sink.query<{ n: string }>(`SELECT count() AS n FROM ${table}`))[0]?.n ?? 0);

/** Rows, distinct offsets and rows beyond one per offset, as one replica holds them. */
async function offsets(sink: Sink, table: string): Promise<{ rows: number; unique: number; doubled: number }> {
  const [r] = await sink.query<{ rows: string; unique: string }>(`SELECT count() AS rows, uniqExact(_partition, _offset) AS unique FROM ${table}`);
  const rows = Number(r?.rows ?? 0);
  const unique = Number(r?.unique ?? 0);
  return { rows, unique, doubled: rows - unique };
}

async function committed(group: string, topic: string): Promise<number> {
  const admin = kafkaClient().admin();
  await admin.connect();
  try {
    const [t] = await admin.fetchOffsets({ groupId: group, topics: [topic] });
    return (t?.partitions ?? []).reduce((sum, p) => sum + Math.max(0, Number(p.offset)), 0);
  } finally {
    await admin.disconnect();
  }
}

interface Scenario {
  readonly topic: string;
  readonly table: string;
  readonly group: string;
}

/** A one-partition topic of N events, its dead-letter topic, the replicated table on both replicas. */
async function scenario(name: string, events = N): Promise<Scenario> {
  const topic = uniqueName(`it-replicas-${name}`);
  const table = uniqueName(`replicas_${name}`);
  tables.push(table);
  await produce(topic, new SyntheticEvents({ seed: 12, startMs: Date.UTC(2026, 10, 4) }).take(events), 1);
  await ensureTopic(kafkaClient(), { topic: deadLetterTopicFor(topic), partitions: 1 });
  const migrated = await run([...APILOG, 'migrate', '--clickhouse', `${urlA},${urlB}`, '--table', table]);
  expect(migrated.stderr).toBe('');
  expect(migrated.code).toBe(0);
  return { topic, table, group: uniqueName('group') };
}

const consume = (s: Scenario, clickhouse: string, extra: string[] = []): Started =>
  start([
    ...APILOG, 'consume', '--brokers', stack().brokers, '--registry', stack().registry, '--clickhouse', clickhouse,
    '--topic', s.topic, '--table', s.table, '--group', s.group, ...FAST, ...extra,
  ]);

/**
 * The first owner writes through A only, in batches of 1,000 rows, and SIGKILLs itself right after its first insert
 * (the crash point between insert and commit): the ledger holds an intent for offsets 0-999, A holds them.
 */
async function firstOwnerInsertsThroughA(s: Scenario): Promise<void> {
  const first = consume(s, urlA, ['--batch-rows', '1000', '--crash-at', 'after-insert:1']);
  const exit = await first.exited;
  expect(first.process.signalCode).toBe('SIGKILL');
  expect(exit).toBeNull();
  expect(await count(replicaA, s.table)).toBe(1000);
}

/** The next owner, through B only (its own batch size, the default 50,000), until the group committed every offset. */
async function nextOwnerThroughB(s: Scenario, cleanup: (() => Promise<unknown>)[]): Promise<string> {
  const next = consume(s, urlB);
  cleanup.push(() => next.stop());
  const done = await waitFor(async () => (await committed(s.group, s.topic)) === N, 90_000);
  await next.stop();
  expect(done).toBe(true);
  return next.stderr();
}

/** Both replicas caught up (B's fetches running, A up): the same rows on each. */
async function converged(s: Scenario, events = N): Promise<void> {
  const same = await waitFor(async () => (await count(replicaA, s.table)) === (await count(replicaB, s.table)) && (await count(replicaB, s.table)) >= events, 60_000);
  expect(same).toBe(true);
}

describe('migrations on the replicas of a shard (integration, local cluster)', () => {
  const cleanup: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const step of cleanup.splice(0).reverse()) await step().catch(() => undefined);
  });

  const migrate = (table: string) => run([...APILOG, 'migrate', '--clickhouse', `${urlA},${urlB}`, '--table', table], { timeoutMs: 60_000 });
  const replicated = async (sink: Sink, table: string) =>
    sink.query<{ path: string; replica: string }>(`SELECT zookeeper_path AS path, replica_name AS replica FROM system.replicas WHERE table = '${table}'`);

  it('`apilog migrate` with every replica\'s URL: the table on each, one ZooKeeper path, recorded once; a replica down: nothing recorded until it is back', async () => {
    const table = uniqueName('replicas_migrate');
    tables.push(table);
    const first = await migrate(table);
    expect(first.code).toBe(0);
    expect(first.stdout).toContain('legacy-replicated migration series');
    expect(JSON.parse(first.stdout.trim().split('\n').at(-1)!)).toEqual({ applied: [1], skipped: [] });
    const path = `/clickhouse/tables/01/default.${table}`;
    expect(await replicated(replicaA, table)).toEqual([{ path, replica: 'r1' }]);
    expect(await replicated(replicaB, table)).toEqual([{ path, replica: 'r2' }]);
    // Recorded once, in a replicated table: both replicas read the one record.
    const records = `SELECT version, count() AS n FROM apilog_migrations WHERE target = '${table}' GROUP BY version`;
    await replicaB.command('SYSTEM SYNC REPLICA apilog_migrations');
    expect(await replicaA.query(records)).toEqual([{ version: 1, n: '1' }]);
    expect(await replicaB.query(records)).toEqual([{ version: 1, n: '1' }]);
    const again = await migrate(table);
    expect(JSON.parse(again.stdout.trim().split('\n').at(-1)!)).toEqual({ applied: [], skipped: [1] });

    // A replica down: the migration cannot run on every replica, so it is not recorded; once it is back, it is.
    const other = uniqueName('replicas_migrate_down');
    tables.push(other);
    const b = services.cluster.clickhouse[1]!;
    const bringBack = await killNow(b, cleanup);
    const failed = await migrate(other);
    expect(failed.code).not.toBe(0);
    expect(failed.stderr).toMatch(/cannot reach ClickHouse at http:\/\/127\.0\.0\.1:53223/);
    expect(await replicaA.query(`SELECT count() AS n FROM apilog_migrations WHERE target = '${other}'`)).toEqual([{ n: '0' }]);
    await bringBack();
    const done = await migrate(other);
    expect(JSON.parse(done.stdout.trim().split('\n').at(-1)!)).toEqual({ applied: [1], skipped: [] });
    expect(await replicated(replicaB, other)).toEqual([{ path: `/clickhouse/tables/01/default.${other}`, replica: 'r2' }]);
  });
});

describe('exactly once on ClickHouse replicas: the next owner writes through a replica that lags (integration, local cluster)', () => {
  const cleanup: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const step of cleanup.splice(0).reverse()) await step().catch(() => undefined);
  });

  it('an insert acknowledged by A, not yet fetched by B; the consumer killed; the next owner through B: nothing doubled', async () => {
    const s = await scenario('lag');
    // B lags: it does not fetch parts from A until told to.
    await replicaB.command(`SYSTEM STOP FETCHES ${s.table}`);
    cleanup.push(() => replicaB.command(`SYSTEM START FETCHES ${s.table}`));
    await firstOwnerInsertsThroughA(s);
    expect(await count(replicaB, s.table)).toBe(0); // the lag is real: B does not have the acknowledged rows
    const log = await nextOwnerThroughB(s, cleanup);
    // It formed the intent's batch again (0-999) and sent it whole: B dropped it as a block ZooKeeper knows.
    expect(recoveries(log)).toEqual([{ ledger: 'intent', reformTo: 999 }]);
    expect(await count(replicaB, s.table)).toBe(N - 1000);
    await replicaB.command(`SYSTEM START FETCHES ${s.table}`);
    await converged(s);
    expect(await offsets(replicaA, s.table)).toEqual({ rows: N, unique: N, doubled: 0 });
    expect(await offsets(replicaB, s.table)).toEqual({ rows: N, unique: N, doubled: 0 });
  });

  it('the replica that acknowledged the insert is SIGKILLed before the other fetched it; the next owner through B: nothing doubled', async () => {
    const s = await scenario('down');
    const [a] = services.cluster.clickhouse;
    await replicaB.command(`SYSTEM STOP FETCHES ${s.table}`);
    await firstOwnerInsertsThroughA(s);
    const before = pidOf(a!);
    const bringBack = await killNow(a!, cleanup); // A goes down now, and comes back once the next owner is done
    await replicaB.command(`SYSTEM START FETCHES ${s.table}`); // nothing to fetch from: A is down
    expect(await count(replicaB, s.table)).toBe(0);
    await nextOwnerThroughB(s, cleanup);
    expect(await count(replicaB, s.table)).toBe(N - 1000);
    await bringBack();
    expect(pidOf(a!)).not.toBe(before);
    await converged(s);
    expect(await offsets(replicaA, s.table)).toEqual({ rows: N, unique: N, doubled: 0 });
    expect(await offsets(replicaB, s.table)).toEqual({ rows: N, unique: N, doubled: 0 });
  });
});

describe('the consumer on several replicas (integration, local cluster)', () => {
  const cleanup: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const step of cleanup.splice(0).reverse()) await step().catch(() => undefined);
  });

  it('inserts go to one replica and move to the other when it is SIGKILLed while they are written: every event once', async () => {
    const s = await scenario('failover', 6000);
    const consumer = consume(s, `${urlA},${urlB}`, ['--batch-rows', '500']);
    cleanup.push(() => consumer.stop());
    expect(await waitFor(async () => (await count(replicaA, s.table)) >= 1000, 60_000)).toBe(true);
    const a = services.cluster.clickhouse[0]!;
    const bringBack = await killNow(a, cleanup); // while the consumer writes to it
    expect(await waitFor(async () => (await committed(s.group, s.topic)) === 6000, 90_000)).toBe(true);
    await consumer.stop();
    expect(consumer.stderr()).toContain('"msg":"ClickHouse: requests move to another replica"');
    await bringBack();
    await converged(s, 6000);
    expect(await offsets(replicaA, s.table)).toEqual({ rows: 6000, unique: 6000, doubled: 0 });
    expect(await offsets(replicaB, s.table)).toEqual({ rows: 6000, unique: 6000, doubled: 0 });
  });

  it('refuses URLs that do not serve one replicated table (inserts moving between them would split the rows)', async () => {
    const table = uniqueName('not_replicated');
    tables.push(table);
    for (const url of [urlA, urlB]) expect((await run([...APILOG, 'migrate', '--clickhouse', url, '--table', table])).code).toBe(0);
    const s = { topic: uniqueName('it-replicas-refused'), table, group: uniqueName('group') };
    await produce(s.topic, new SyntheticEvents({ seed: 3 }).take(10), 1);
    const refused = consume(s, `${urlA},${urlB}`);
    cleanup.push(() => refused.stop());
    expect(await refused.exited).not.toBe(0);
    expect(refused.stderr()).toContain(`${table} at ${urlA} is not a replicated table`);
  });
});

/** SIGKILLs `service` now; returns what starts it again (also run at cleanup, if the test does not get there). */
async function killNow(service: Service, cleanup: (() => Promise<unknown>)[]): Promise<() => Promise<void>> {
  await stopService(service, 'SIGKILL');
  let back: Promise<void> | undefined;
  const bringBack = () => (back ??= startService(service, { verbose: false }));
  cleanup.push(bringBack);
  return bringBack;
}

/** The consumer's "partition recovered" log lines: the ledger it found and the batch it formed again. */
function recoveries(log: string): { ledger: string; reformTo?: number }[] {
  return log
    .split('\n')
    .filter((line) => line.includes('"msg":"partition recovered from ClickHouse"'))
    .map((line) => {
      const entry = JSON.parse(line) as { ledger: string; reformTo?: number };
      return { ledger: entry.ledger, ...(entry.reformTo !== undefined ? { reformTo: entry.reformTo } : {}) };
    });
}
