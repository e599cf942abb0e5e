/**
 * The crash test's faults of the local cluster (`npm run chaos -- --cluster`, stack/cluster.ts): a partition leader
 * broker SIGKILLed and started again, a ClickHouse replica SIGKILLed while consumers write to it and started again,
 * ZooKeeper SIGKILLed and started again. Each restart is proven by a new pid (and, for ClickHouse, the server's
 * uptime); only proven ones are counted. And, once the consumers are done, the replicas waited for until they hold
 * the same rows.
 */
import type { Admin } from 'kafkajs';
import { ClickHouseServerSink } from '../../clickhouse/serverSink.ts';
import type { ClusterStack } from '../../stack/cluster.ts';
import { livePid } from '../../stack/processes.ts';
import { pidFileOf, type Service } from '../../stack/services.ts';
import { startService, stopService } from '../../stack/stack.ts';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const pidOf = (service: Service) => livePid(pidFileOf(service.id), service.marker);

export interface ClusterFaultCounts {
  leader_kills: number;
  replica_kills: number;
  zookeeper_restarts: number;
}

export class ClusterFaults {
  readonly counts: ClusterFaultCounts = { leader_kills: 0, replica_kills: 0, zookeeper_restarts: 0 };
  private nextReplica = 0;
  private last: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly cluster: ClusterStack,
    private readonly admin: Admin,
    private readonly topic: string,
    private readonly table: string,
    private readonly rand: () => number,
    private readonly say: (line: string) => void,
  ) {}

  /**
   * Runs `fault` once the faults before it are over: the cluster survives one broker, one replica or ZooKeeper
   * down, not two of them at once (that refuses writes, as it should, and tests nothing more).
   */
  exclusive<T>(fault: () => Promise<T>): Promise<T> {
    const next = this.last.then(fault, fault);
    this.last = next.catch(() => undefined);
    return next;
  }

  /** SIGKILLs `service`, keeps it down for `downMs`, starts it again; true when a new process runs. */
  private async restart(service: Service, downMs: number): Promise<boolean> {
    const before = pidOf(service);
    await stopService(service, 'SIGKILL');
    await sleep(downMs);
    await startService(service, { verbose: false });
    const after = pidOf(service);
    return before !== undefined && after !== undefined && after !== before;
  }

  /** The leader of a random partition of the topic SIGKILLed, down 3-6 s (the controller fences it), started again. */
  killLeader(): Promise<void> {
    return this.exclusive(() => this.killLeaderNow());
  }

  private async killLeaderNow(): Promise<void> {
    const partitions = (await this.admin.fetchTopicMetadata({ topics: [this.topic] })).topics[0]?.partitions ?? [];
    const partition = partitions[Math.floor(this.rand() * partitions.length)];
    // Node ids are 1, 2, 3 in the order of cluster.brokers.
    const broker = partition === undefined ? undefined : this.cluster.brokers[partition.leader - 1];
    if (partition === undefined || broker === undefined) throw new Error(`no leader found for a partition of ${this.topic}`);
    this.say(`  SIGKILL of broker ${broker.id}, leader of ${this.topic}:${partition.partitionId}`);
    if (await this.restart(broker, 3000 + this.rand() * 3000)) this.counts.leader_kills++;
    // Back in every in-sync replica set before the next fault: two brokers out of sync would leave fewer than
    // min.insync.replicas, which refuses writes (as it should) and tests nothing more.
    const until = Date.now() + 60_000;
    while (Date.now() < until) {
      const meta = await this.admin.fetchTopicMetadata({ topics: [this.topic] }).catch(() => undefined);
      if (meta?.topics[0]?.partitions.every((p) => p.isr.length === this.cluster.brokers.length)) return;
      await sleep(500);
    }
  }

  /**
   * A replica SIGKILLed once rows flow into it (they alternate: r1, r2, …; consumers write to r1 first and move on
   * when it fails), down 2-5 s, started again: a new pid, up for no longer than since the kill.
   */
  killReplica(): Promise<void> {
    return this.exclusive(() => this.killReplicaNow());
  }

  private async killReplicaNow(): Promise<void> {
    const index = this.nextReplica++ % this.cluster.clickhouse.length;
    const replica = this.cluster.clickhouse[index]!;
    const sink = new ClickHouseServerSink({ url: replica.endpoint, requestTimeoutMs: 5000 });
    try {
      await this.rowsGrowOn(sink);
      this.say(`  SIGKILL of ClickHouse replica ${replica.id} while rows flow`);
      const killedAt = Date.now();
      const restarted = await this.restart(replica, 2000 + this.rand() * 3000);
      const [up] = await sink.query<{ s: string | number }>('SELECT uptime() AS s');
      if (restarted && Number(up?.s ?? Infinity) * 1000 <= Date.now() - killedAt + 1000) this.counts.replica_kills++;
    } finally {
      await sink.close();
    }
  }

  /** Waits (up to 20 s) until the table's row count on `sink` grows: the replica takes inserts or fetches parts. */
  private async rowsGrowOn(sink: ClickHouseServerSink): Promise<void> {
    const count = async () => Number((await sink.query<{ n: string }>(`SELECT count() AS n FROM ${this.table}`).catch(() => [{ n: '-1' }]))[0]?.n ?? -1);
    const first = await count();
    const until = Date.now() + 20_000;
    while (Date.now() < until && (await count()) <= first) await sleep(200);
  }

  /** ZooKeeper SIGKILLed and started again at once: replicated tables are read-only until their sessions are back. */
  restartZooKeeper(): Promise<void> {
    return this.exclusive(async () => {
      this.say('  SIGKILL of ZooKeeper');
      if (await this.restart(this.cluster.zookeeper, 1000)) this.counts.zookeeper_restarts++;
    });
  }

  /** A ClickHouse replica to freeze (SIGSTOP) in a stall, chosen at random; freeze it inside exclusive(). */
  stallTarget(): Service {
    return this.cluster.clickhouse[Math.floor(this.rand() * this.cluster.clickhouse.length)]!;
  }

  /** Waits until every replica holds the same rows of the table (each has fetched the others' parts). */
  async converge(timeoutMs = 120_000): Promise<boolean> {
    const sinks = this.cluster.clickhouse.map((c) => new ClickHouseServerSink({ url: c.endpoint }));
    try {
      const until = Date.now() + timeoutMs;
      while (Date.now() < until) {
        const counts = await Promise.all(
          sinks.map(async (s) => (await s.query<{ n: string; u: string }>(`SELECT count() AS n, uniqExact(_partition, _offset) AS u FROM ${this.table}`).catch(() => []))[0]),
        );
        const queues = await Promise.all(
          sinks.map(async (s) => Number((await s.query<{ n: string }>(`SELECT count() AS n FROM system.replication_queue WHERE table = '${this.table}'`).catch(() => [{ n: '1' }]))[0]?.n ?? 1)),
        );
        if (counts.every((c) => c !== undefined && c.n === counts[0]!.n && c.u === counts[0]!.u) && queues.every((q) => q === 0)) return true;
        await sleep(1000);
      }
      return false;
    } finally {
      await Promise.all(sinks.map((s) => s.close()));
    }
  }
}
