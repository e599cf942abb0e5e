/**
 * The local cluster (`npm run stack -- up --cluster`): the pipeline as a fleet that outgrew one broker and one
 * ClickHouse server runs it, natively like the single stack, every service a private instance (own id, ports, data
 * directory and pid file), so it runs beside the shared stack:
 *
 * - Kafka 3.9.1 in KRaft mode, three nodes, each both broker and controller (three JVMs; a static quorum of three
 *   voters survives one node down). New topics get 3 replicas by default, every topic `min.insync.replicas` 2, the
 *   group offsets and transaction state 3 replicas; no unclean leader election.
 * - Apicurio Registry (its own instance, H2 file).
 * - ZooKeeper 3.8.4, standalone: Debian's ClickHouse 18.16 replicates through it (it predates ClickHouse Keeper).
 * - Two Debian ClickHouse 18.16 servers, replicas `r1` and `r2` of shard `01` of the cluster `apilog`
 *   (`remote_servers`), each with macros {shard} and {replica} for `ReplicatedMergeTree` paths.
 *
 * Ports: brokers 53092/53192/53292 (controllers 53093/53193/53293), registry 53081, ZooKeeper 53181, ClickHouse HTTP
 * 53123/53223, native TCP 53900/53901, interserver HTTP 53909/53919. Endpoints for a shell: `.stack/cluster/env`.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { STACK_DIR } from './endpoints.ts';
import {
  clickhouseService,
  kafkaService,
  randomClusterId,
  registryService,
  zookeeperService,
  type ClickHouseReplica,
  type Service,
} from './services.ts';

export const CLUSTER_DIR = join(STACK_DIR, 'cluster');

export const CLUSTER_PORTS = {
  brokers: [53092, 53192, 53292],
  controllers: [53093, 53193, 53293],
  registry: 53081,
  zookeeper: 53181,
  clickhouseHttp: [53123, 53223],
  clickhouseTcp: [53900, 53901],
  interserver: [53909, 53919],
} as const;

/** The name of the cluster in the servers' `remote_servers` (ON CLUSTER, Distributed tables). */
export const CLICKHOUSE_CLUSTER_NAME = 'apilog';
/** Kafka: replicas of every topic, and how many must be in sync for an acks=all write. */
export const CLUSTER_REPLICATION_FACTOR = 3;
export const CLUSTER_MIN_INSYNC_REPLICAS = 2;

export interface ClusterStack {
  readonly zookeeper: Service;
  readonly brokers: readonly Service[];
  readonly registry: Service;
  readonly clickhouse: readonly Service[];
  /** What makes each ClickHouse server a replica (macros, ZooKeeper, `remote_servers`), in the order of `clickhouse`. */
  readonly replicas: readonly ClickHouseReplica[];
  /** In start order: ZooKeeper, the brokers, the registry, the ClickHouse replicas. */
  readonly services: readonly Service[];
  readonly endpoints: {
    /** host:port of every broker. */
    readonly brokers: readonly string[];
    readonly registry: string;
    /** http://… of every ClickHouse replica. */
    readonly clickhouse: readonly string[];
    readonly zookeeper: string;
  };
}

/** The Kafka cluster id every node is formatted with: made on first use, then the same. */
function kafkaClusterId(): string {
  const file = join(CLUSTER_DIR, 'kafka-cluster-id');
  if (existsSync(file)) return readFileSync(file, 'utf8').trim();
  const id = randomClusterId();
  mkdirSync(CLUSTER_DIR, { recursive: true });
  writeFileSync(file, `${id}\n`);
  return id;
}

export function clusterStack(): ClusterStack {
  const P = CLUSTER_PORTS;
  const voters = P.controllers.map((controllerPort, i) => ({ nodeId: i + 1, controllerPort }));
  const brokers = P.brokers.map((port, i) =>
    kafkaService({
      id: `kafka-cluster-${i + 1}`,
      port,
      controllerPort: P.controllers[i]!,
      heap: '384m',
      cluster: {
        nodeId: i + 1,
        voters,
        clusterId: kafkaClusterId,
        replicationFactor: CLUSTER_REPLICATION_FACTOR,
        minInsyncReplicas: CLUSTER_MIN_INSYNC_REPLICAS,
      },
    }),
  );
  const zookeeper = zookeeperService({ id: 'zookeeper-cluster', port: P.zookeeper });
  const registry = registryService({ id: 'registry-cluster', port: P.registry });
  const shard = P.clickhouseTcp.map((tcpPort) => ({ host: '127.0.0.1', tcpPort }));
  const replicas = P.clickhouseHttp.map(
    (_, i): ClickHouseReplica => ({
      shard: '01',
      replica: `r${i + 1}`,
      interserverPort: P.interserver[i]!,
      zookeeper: zookeeper.endpoint,
      cluster: { name: CLICKHOUSE_CLUSTER_NAME, shards: [shard] },
    }),
  );
  const clickhouse = P.clickhouseHttp.map((httpPort, i) =>
    clickhouseService({ id: `clickhouse-cluster-${i + 1}`, httpPort, tcpPort: P.clickhouseTcp[i]!, replica: replicas[i]! }),
  );
  return {
    zookeeper,
    brokers,
    registry,
    clickhouse,
    replicas,
    services: [zookeeper, ...brokers, registry, ...clickhouse],
    endpoints: {
      brokers: brokers.map((b) => b.endpoint),
      registry: registry.endpoint,
      clickhouse: clickhouse.map((c) => c.endpoint),
      zookeeper: zookeeper.endpoint,
    },
  };
}

/** `.stack/cluster/env`: what a shell needs to run apilog against the cluster (`set -a; . .stack/cluster/env; set +a`). */
export function writeClusterEnv(stack: ClusterStack): string {
  mkdirSync(CLUSTER_DIR, { recursive: true });
  const file = join(CLUSTER_DIR, 'env');
  writeFileSync(
    file,
    [
      '# Written by `npm run stack -- up --cluster`: the endpoints of the local cluster.',
      `KAFKA_BROKERS=${stack.endpoints.brokers.join(',')}`,
      `SCHEMA_REGISTRY_URL=${stack.endpoints.registry}`,
      `CLICKHOUSE_URL=${stack.endpoints.clickhouse.join(',')}`,
      '',
    ].join('\n'),
  );
  return file;
}

/** Resident memory of a process in bytes (VmRSS), or undefined when it is gone. */
export function residentBytes(pid: number): number | undefined {
  try {
    const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}
