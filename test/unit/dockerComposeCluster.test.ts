/**
 * docker-compose.yml's `cluster` profile against the native cluster (stack/cluster.ts), read as data (no Docker engine
 * here): as many Kafka nodes, one KRaft quorum of all of them, the same replication settings line for line, the same
 * host ports; a registry; ClickHouse Keeper in ZooKeeper's place; as many ClickHouse replicas with the same shard,
 * replica names and `remote_servers` cluster as the native servers' macros, each replica's config given the values it
 * reads from its environment.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { CLUSTER_MIN_INSYNC_REPLICAS, CLUSTER_PORTS, CLUSTER_REPLICATION_FACTOR, clusterStack } from '../../stack/cluster.ts';
import { PROJECT_ROOT } from '../../stack/endpoints.ts';
import { APICURIO_VERSION, KAFKA_VERSION, clusterMemberConfig, replicaConfigXml } from '../../stack/services.ts';

interface ComposeService {
  image?: string;
  profiles?: string[];
  ports?: string[];
  environment?: Record<string, string>;
  healthcheck?: { test?: string[] | string; retries?: number };
  depends_on?: Record<string, { condition: string }>;
  command?: string[] | string;
  volumes?: string[];
}

// Merge keys (`<<: *anchor`), as Docker Compose reads them.
const compose = parse(readFileSync(join(PROJECT_ROOT, 'docker-compose.yml'), 'utf8'), { merge: true }) as {
  services: Record<string, ComposeService>;
  volumes: Record<string, unknown>;
};
const inProfile = Object.entries(compose.services).filter(([, s]) => s.profiles?.includes('cluster'));
const service = (name: string): ComposeService => {
  const s = compose.services[name];
  if (s === undefined) throw new Error(`docker-compose.yml has no service ${name}`);
  return s;
};
const native = clusterStack();
const brokers = native.brokers.map((_, i) => `kafka-${i + 1}`);
const replicas = native.clickhouse.map((_, i) => `clickhouse-${i + 1}`);
const hostPorts = (name: string) => (service(name).ports ?? []).map((p) => Number(p.split(':')[0]));
const containerPort = (name: string, host: number) => Number(service(name).ports!.find((p) => Number(p.split(':')[0]) === host)!.split(':')[1]);
const words = (test: string[] | string | undefined) => (Array.isArray(test) ? test.join(' ') : (test ?? ''));
/** The text of every `<tag>…</tag>` in an XML file. */
const tags = (xml: string, tag: string) => [...xml.matchAll(new RegExp(`<${tag}>([^<]*)</${tag}>`, 'g'))].map((m) => m[1]!);
const fromEnv = (xml: string, tag: string) => new RegExp(`<${tag} from_env="([A-Z_]+)"\\s*/>`).exec(xml)?.[1];
/** A host file a container mounts: `./path:/in/container[:ro]` → [path, in container]. */
const mounts = (name: string) => (service(name).volumes ?? []).filter((v) => v.startsWith('./')).map((v) => v.split(':') as [string, string]);

describe("docker-compose.yml's cluster profile (against stack/cluster.ts)", () => {
  it('has the native cluster\'s roles, only under the profile: a Kafka node per native node, a registry, Keeper, a server per replica, the topics job', () => {
    expect(inProfile.map(([name]) => name).sort()).toEqual(
      [...brokers, 'schema-registry-cluster', 'clickhouse-keeper', ...replicas, 'kafka-topics-cluster'].sort(),
    );
    // The default `docker compose up` starts none of them.
    for (const [name, s] of Object.entries(compose.services)) if (!inProfile.some(([n]) => n === name)) expect(s.profiles).toBeUndefined();
  });

  it('pins the native versions and publishes the native cluster\'s host ports', () => {
    for (const b of [...brokers, 'kafka-topics-cluster']) expect(service(b).image).toBe(`apache/kafka:${KAFKA_VERSION}`);
    expect(service('schema-registry-cluster').image).toBe(`apicurio/apicurio-registry:${APICURIO_VERSION}`);
    brokers.forEach((b, i) => expect(hostPorts(b)).toEqual([CLUSTER_PORTS.brokers[i]]));
    expect(hostPorts('schema-registry-cluster')).toEqual([CLUSTER_PORTS.registry]);
    expect(hostPorts('clickhouse-keeper')).toEqual([CLUSTER_PORTS.zookeeper]);
    replicas.forEach((r, i) => {
      expect(hostPorts(r)).toEqual([CLUSTER_PORTS.clickhouseHttp[i], CLUSTER_PORTS.clickhouseTcp[i]]);
      expect(containerPort(r, CLUSTER_PORTS.clickhouseHttp[i]!)).toBe(8123);
    });
  });

  it('runs the Kafka nodes as one quorum of all of them, each advertising its own host port', () => {
    const voters = brokers.map((b, i) => `${i + 1}@${b}:9093`).join(',');
    brokers.forEach((b, i) => {
      const env = service(b).environment!;
      expect(env['KAFKA_NODE_ID']).toBe(String(i + 1));
      expect(env['KAFKA_PROCESS_ROLES']).toBe('broker,controller');
      expect(env['KAFKA_CONTROLLER_QUORUM_VOTERS']).toBe(voters);
      expect(env['KAFKA_LISTENERS']).toContain(`CONTROLLER://:9093`);
      expect(env['KAFKA_ADVERTISED_LISTENERS']).toContain(`127.0.0.1:${CLUSTER_PORTS.brokers[i]}`);
      expect(env['KAFKA_ADVERTISED_LISTENERS']).toContain(`INTERNAL://${b}:`);
      expect(env['KAFKA_AUTO_CREATE_TOPICS_ENABLE']).toBe('false');
      expect(words(service(b).healthcheck?.test)).toContain(String(CLUSTER_PORTS.brokers[i]));
      // One cluster id for all, a valid Kafka Uuid (22 characters of URL-safe base64, 16 bytes).
      expect(env['CLUSTER_ID']).toMatch(/^[A-Za-z0-9_-]{22}$/);
      expect(Buffer.from(env['CLUSTER_ID']!, 'base64url')).toHaveLength(16);
      expect(env['CLUSTER_ID']).toBe(service(brokers[0]!).environment!['CLUSTER_ID']);
    });
    // Each node's data on its own volume.
    expect(new Set(brokers.map((b) => service(b).volumes![0]!.split(':')[0])).size).toBe(brokers.length);
  });

  it('gives every node the native replication settings, line for line (replication factor 3, min.insync.replicas 2, no unclean election)', () => {
    const lines = clusterMemberConfig({ nodeId: 1, voters: [], clusterId: () => '', replicationFactor: CLUSTER_REPLICATION_FACTOR, minInsyncReplicas: CLUSTER_MIN_INSYNC_REPLICAS });
    expect(lines).toContain('min.insync.replicas=2');
    for (const b of brokers) {
      for (const line of lines) {
        const [key, value] = line.split('=') as [string, string];
        // The image's convention: KAFKA_ and the property in capitals, dots as underscores.
        expect(service(b).environment![`KAFKA_${key.toUpperCase().replaceAll('.', '_')}`], `${b}: ${line}`).toBe(value);
      }
    }
  });

  it('makes each server a replica as the native servers are: the same shard and replica names, one cluster of one shard listing every replica, Keeper as their ZooKeeper', () => {
    const [[file, inContainer]] = mounts(replicas[0]!) as [[string, string]];
    expect(inContainer).toMatch(/^\/etc\/clickhouse-server\/config\.d\/[\w-]+\.xml$/);
    const xml = readFileSync(join(PROJECT_ROOT, file), 'utf8');
    const nativeXml = native.replicas.map(replicaConfigXml);
    // Values the native servers write into their config, per replica; compose gives them through the environment.
    replicas.forEach((r, i) => {
      expect(mounts(r)).toEqual(mounts(replicas[0]!));
      const env = service(r).environment!;
      expect(env[fromEnv(xml, 'shard')!]).toBe(tags(nativeXml[i]!, 'shard').find((t) => t.trim() !== '') ?? native.replicas[i]!.shard);
      expect(env[fromEnv(xml, 'replica')!]).toBe(native.replicas[i]!.replica);
      expect(env[fromEnv(xml, 'interserver_http_host')!]).toBe(r);
      expect(service(r).depends_on?.['clickhouse-keeper']?.condition).toBe('service_healthy');
      expect(words(service(r).healthcheck?.test)).toContain('8123/ping');
    });
    expect(new Set(replicas.map((r) => service(r).environment!['CLICKHOUSE_REPLICA'])).size).toBe(replicas.length);
    // remote_servers: the native cluster's name, one shard, internal replication, every replica on its native port.
    expect(xml).toContain(`<${native.replicas[0]!.cluster.name}>`);
    expect(tags(xml, 'internal_replication')).toEqual(tags(nativeXml[0]!, 'internal_replication'));
    expect(xml.match(/<shard>\s*</g)).toHaveLength(native.replicas[0]!.cluster.shards.length);
    expect(tags(xml, 'host').filter((h) => h.startsWith('clickhouse-') && h !== 'clickhouse-keeper')).toEqual(replicas);
    // ZooKeeper's place: the Keeper service's client port.
    const keeperXml = readFileSync(join(PROJECT_ROOT, mounts('clickhouse-keeper')[0]![0]), 'utf8');
    const keeperPort = tags(keeperXml, 'tcp_port')[0];
    expect(xml).toMatch(new RegExp(`<node><host>clickhouse-keeper</host><port>${keeperPort}</port></node>`));
    expect(containerPort('clickhouse-keeper', CLUSTER_PORTS.zookeeper)).toBe(Number(keeperPort));
  });

  it('starts ClickHouse Keeper from its official image, with a readiness probe on the port its config opens', () => {
    const keeper = service('clickhouse-keeper');
    expect(keeper.image).toMatch(/^clickhouse\/clickhouse-keeper:\d+\.\d+$/);
    for (const r of replicas) expect(service(r).image).toMatch(/^clickhouse\/clickhouse-server:\d+\.\d+$/);
    // Keeper and the servers from the same release.
    expect(keeper.image!.split(':')[1]).toBe(service(replicas[0]!).image!.split(':')[1]);
    const [file, inContainer] = mounts('clickhouse-keeper')[0]!;
    expect(inContainer).toBe('/etc/clickhouse-keeper/keeper_config.xml');
    const keeperXml = readFileSync(join(PROJECT_ROOT, file), 'utf8');
    const probePort = /<http_control>\s*<port>(\d+)<\/port>/.exec(keeperXml)?.[1];
    const endpoint = /<readiness>\s*<endpoint>([^<]+)<\/endpoint>/.exec(keeperXml)?.[1];
    expect(words(keeper.healthcheck?.test)).toContain(`127.0.0.1:${probePort}${endpoint}`);
    expect(keeperXml).toContain('<listen_host>0.0.0.0</listen_host>');
  });

  it('creates the topics once every node is healthy, leaving their replication to the brokers\' default', () => {
    const job = service('kafka-topics-cluster');
    for (const b of brokers) expect(job.depends_on?.[b]?.condition).toBe('service_healthy');
    const command = words(job.command);
    expect(command).toContain('--topic api-calls ');
    expect(command).toContain('--topic api-calls.dead-letter');
    expect(command).not.toContain('--replication-factor');
  });

  it('declares every named volume the profile mounts', () => {
    for (const [, s] of inProfile) {
      for (const v of s.volumes ?? []) if (!v.startsWith('./')) expect(Object.keys(compose.volumes)).toContain(v.split(':')[0]);
    }
  });
});
