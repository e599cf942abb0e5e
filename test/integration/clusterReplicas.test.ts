/**
 * ClickHouse replicas (integration: two Debian 18.16 servers replicating a ReplicatedMergeTree through ZooKeeper, the
 * local cluster's): migrations on every replica.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ClickHouseServerSink } from '../../consumer/clickhouseServerSink.ts';
import type { Sink } from '../../consumer/sink.ts';
import type { Service } from '../../stack/services.ts';
import { startService, stopService } from '../../stack/stack.ts';
import { useClusterServices, type ClusterServices } from './clusterServices.ts';
import { uniqueName } from './pipeline.ts';
import { APILOG, run } from './processes.ts';

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

afterAll(async () => {
  await replicaA?.close();
  await replicaB?.close();
  await services?.stop();
});

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

/** SIGKILLs `service` now; returns what starts it again (also run at cleanup, if the test does not get there). */
async function killNow(service: Service, cleanup: (() => Promise<unknown>)[]): Promise<() => Promise<void>> {
  await stopService(service, 'SIGKILL');
  let back: Promise<void> | undefined;
  const bringBack = () => (back ??= startService(service, { verbose: false }));
  cleanup.push(bringBack);
  return bringBack;
}
