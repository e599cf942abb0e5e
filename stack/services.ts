/**
 * The local stack's services, started natively (no Docker): Apache Kafka in KRaft mode from Maven Central,
 * Apicurio Registry (Confluent-compatible API) from Maven Central, and Debian's ClickHouse server; for the cluster
 * (cluster.ts) also Apache ZooKeeper from Maven Central, which the Debian server replicates through.
 *
 * Each service knows how to install itself (cached under CACHE_DIR), prepare its data and config under
 * STACK_DIR, start, and answer a health probe. Starting and stopping go by pid file only.
 */
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { dirname, join } from 'node:path';
import { Kafka, logLevel, type KafkaConfig } from 'kafkajs';
import { Agent, fetch as undiciFetch } from 'undici';
import type { Certificates } from './certificates.ts';
import {
  CACHE_DIR,
  CLICKHOUSE_HTTP_PORT,
  CLICKHOUSE_TCP_PORT,
  KAFKA_CONTROLLER_PORT,
  KAFKA_PORT,
  PROJECT_ROOT,
  REGISTRY_PORT,
  STACK_DIR,
} from './endpoints.ts';

export const KAFKA_VERSION = '3.9.1';
export const APICURIO_VERSION = '3.0.9';
export const ZOOKEEPER_VERSION = '3.8.4';

/** The shared stack's services (`npm run stack -- up kafka` …). */
export type ServiceName = 'kafka' | 'registry' | 'clickhouse';
export const SERVICE_NAMES: readonly ServiceName[] = ['kafka', 'registry', 'clickhouse'];
/** Every kind of service, the cluster's ZooKeeper included. */
export type ServiceKind = ServiceName | 'zookeeper';

export interface Service {
  /** Which kind of service this is. */
  readonly name: ServiceKind;
  /** Names its pid file, log file and data directory: the kind for the shared stack, another id for a private instance. */
  readonly id: string;
  /** What clients connect to, for messages and the env file. */
  readonly endpoint: string;
  /** A string in the process's command line that proves a pid is this service. */
  readonly marker: string;
  readonly startTimeoutMs: number;
  /** Downloads or installs what is missing; idempotent. Returns a note when it did work. */
  install(): string | undefined;
  /** Writes config and prepares the data directory; idempotent. */
  prepare(): void;
  command(): { command: string; args: string[] };
  /** One quick probe: true when the service answers as healthy. */
  healthy(): Promise<boolean>;
}

export const LOG_DIR = join(STACK_DIR, 'logs');
export const PID_DIR = join(STACK_DIR, 'pids');
export const DATA_DIR = join(STACK_DIR, 'data');

export const pidFileOf = (id: string) => join(PID_DIR, `${id}.pid`);
export const logFileOf = (id: string) => join(LOG_DIR, `${id}.log`);

export class StackError extends Error {}

/** Runs a tool to its end; a StackError with its last output lines when it fails. `env` adds variables (secrets go there, not in args). */
export function run(command: string, args: string[], what: string, env?: Record<string, string>): void {
  try {
    execFileSync(command, args, { stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 * 1024 * 1024, ...(env ? { env: { ...process.env, ...env } } : {}) });
  } catch (error) {
    const e = error as { stdout?: Buffer; stderr?: Buffer; message: string };
    const out = `${e.stdout?.toString() ?? ''}${e.stderr?.toString() ?? ''}`.split('\n').slice(-20).join('\n');
    throw new StackError(`${what} failed: ${e.message.split('\n')[0]}\n${out}`);
  }
}

export function hasCommand(command: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

export function requireCommand(command: string, why: string): void {
  if (!hasCommand(command)) throw new StackError(`${command} is not installed (${why})`);
}

/**
 * A Kafka cluster id: 16 random bytes in URL-safe base64 without padding. Like Kafka's own Uuid.randomUuid, never one
 * that starts with '-', which the storage tool's argument parser would take for an option.
 */
export function randomClusterId(): string {
  for (;;) {
    const id = randomBytes(16).toString('base64url');
    if (!id.startsWith('-')) return id;
  }
}

/**
 * Fills `target` through `fill(partial)` unless `ready` (a file inside it) exists. The download lands in
 * `<target>.partial` and is renamed into place, so an interrupted download is never mistaken for a finished one.
 */
function installAtomically(target: string, ready: string, fill: (partial: string) => string): string | undefined {
  if (existsSync(ready)) return undefined;
  const partial = `${target}.partial`;
  rmSync(partial, { recursive: true, force: true });
  mkdirSync(partial, { recursive: true });
  const note = fill(partial);
  rmSync(target, { recursive: true, force: true });
  mkdirSync(dirname(target), { recursive: true });
  renameSync(partial, target);
  return note;
}

/**
 * Resolves a JVM service and its runtime dependencies from Maven Central into `lib` (cached): `mvn
 * dependency:copy-dependencies` on stack/<pom>/pom.xml with `-D<property>=<version>`; `jar` proves it is done.
 */
function installMavenRuntime(spec: { name: string; pom: string; property: string; version: string; lib: string; jar: string }): string | undefined {
  return installAtomically(spec.lib, join(spec.lib, spec.jar), (partial) => {
    requireCommand('mvn', `needed to fetch ${spec.name} from Maven Central`);
    run(
      'mvn',
      [
        '-B', '-q', '-f', join(PROJECT_ROOT, 'stack', spec.pom, 'pom.xml'),
        `-D${spec.property}=${spec.version}`,
        'dependency:copy-dependencies', '-DincludeScope=runtime', `-DoutputDirectory=${partial}`,
      ],
      `downloading ${spec.name} ${spec.version} from Maven Central`,
    );
    return `${spec.name} ${spec.version}: ${readdirSync(partial).length} jars`;
  });
}

/** True when `url` answers 2xx (with `expectBody` in it); `caCert`: trust this CA for an https:// URL. */
async function httpOk(url: string, expectBody?: string, caCert?: string): Promise<boolean> {
  if (caCert !== undefined && !existsSync(caCert)) return false;
  const dispatcher = caCert === undefined ? undefined : new Agent({ connect: { ca: readFileSync(caCert) } });
  try {
    const res = await undiciFetch(url, { signal: AbortSignal.timeout(2000), ...(dispatcher ? { dispatcher } : {}) });
    if (!res.ok) return false;
    const body = await res.text();
    return expectBody === undefined || body.includes(expectBody);
  } catch {
    return false;
  } finally {
    await dispatcher?.close();
  }
}

// ---------------------------------------------------------------- Kafka

const kafkaHome = join(CACHE_DIR, `kafka-${KAFKA_VERSION}`);
const kafkaLib = join(kafkaHome, 'lib');

export interface KafkaInstance {
  /** @default 'kafka' */
  readonly id?: string;
  /** @default 9092 */
  readonly port?: number;
  /** @default 9093 */
  readonly controllerPort?: number;
  /** A SASL_SSL listener (SCRAM-SHA-512) instead of PLAINTEXT. @default none */
  readonly security?: KafkaSecurity;
  /** One node of a multi-node cluster (cluster.ts) instead of a single node. @default none */
  readonly cluster?: KafkaClusterMember;
  /** JVM heap, -Xmx. @default '512m' */
  readonly heap?: string;
}

/**
 * A node of a KRaft cluster whose every node is both broker and controller (combined mode: three JVMs, not six),
 * with a static controller quorum (`controller.quorum.voters`): a majority of the nodes must run for the cluster to
 * take writes, so it survives one of three.
 */
export interface KafkaClusterMember {
  readonly nodeId: number;
  /** Every node of the quorum, this one included. */
  readonly voters: readonly { readonly nodeId: number; readonly controllerPort: number }[];
  /** The cluster id every node is formatted with (made once, the same for all). */
  readonly clusterId: () => string;
  /** Replicas of new topics by default and of the internal topics (group offsets, transaction state). */
  readonly replicationFactor: number;
  /** `min.insync.replicas` of every topic: an acks=all write needs this many replicas in sync. */
  readonly minInsyncReplicas: number;
}

export interface SaslUser {
  readonly username: string;
  readonly password: string;
}

/** What a secured broker needs: its certificate (PEM, from our CA), the broker's own SCRAM user, the clients'. */
export interface KafkaSecurity {
  readonly certificates: Certificates;
  /** Protects the PKCS12 key store and trust store the script makes from the PEM files. */
  readonly storePassword: string;
  /** The broker's own user (inter-broker traffic goes through the same SASL_SSL listener). */
  readonly broker: SaslUser;
  readonly users: readonly SaslUser[];
}

/** kafkajs settings that reach a secured broker as `user`. */
export function kafkaClientSecurity(security: KafkaSecurity, user: SaslUser): Pick<KafkaConfig, 'ssl' | 'sasl'> {
  return { ssl: { ca: [readFileSync(security.certificates.caCert)] }, sasl: { mechanism: 'scram-sha-512', username: user.username, password: user.password } };
}

/** Java properties quoting for a JAAS string value. */
const jaasString = (value: string) => `"${value.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;

/**
 * The SASL_SSL lines of a secured broker's config, after writing its PKCS12 key store (its certificate and key) and
 * trust store (our CA: the broker connects to itself over the same listener) into `dir`. The controller listener
 * stays PLAINTEXT on 127.0.0.1 (the one node's quorum with itself).
 */
function secureBrokerConfig(security: KafkaSecurity, dir: string): string[] {
  const keystore = join(dir, 'kafka.keystore.p12');
  const truststore = join(dir, 'kafka.truststore.p12');
  const env = { APILOG_STORE_PASSWORD: security.storePassword };
  rmSync(keystore, { force: true });
  rmSync(truststore, { force: true });
  const { caCert, serverCert, serverKey } = security.certificates;
  run('openssl', ['pkcs12', '-export', '-in', serverCert, '-inkey', serverKey, '-certfile', caCert, '-name', 'kafka', '-out', keystore, '-passout', 'env:APILOG_STORE_PASSWORD'],
    'making the broker key store', env);
  run('keytool', ['-importcert', '-noprompt', '-alias', 'apilog-ca', '-file', caCert, '-keystore', truststore, '-storetype', 'PKCS12', '-storepass:env', 'APILOG_STORE_PASSWORD'],
    'making the broker trust store', env);
  return [
    'sasl.enabled.mechanisms=SCRAM-SHA-512',
    'sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512',
    `listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username=${jaasString(security.broker.username)} password=${jaasString(security.broker.password)};`,
    `ssl.keystore.location=${keystore}`,
    'ssl.keystore.type=PKCS12',
    `ssl.keystore.password=${security.storePassword}`,
    `ssl.truststore.location=${truststore}`,
    'ssl.truststore.type=PKCS12',
    `ssl.truststore.password=${security.storePassword}`,
  ];
}

/** The replication lines of a cluster node's config. */
export function clusterMemberConfig(cluster: KafkaClusterMember): string[] {
  const rf = cluster.replicationFactor;
  const isr = cluster.minInsyncReplicas;
  return [
    `default.replication.factor=${rf}`,
    `min.insync.replicas=${isr}`,
    `offsets.topic.replication.factor=${rf}`,
    `transaction.state.log.replication.factor=${rf}`,
    `transaction.state.log.min.isr=${isr}`,
    // A replica that was out of sync never becomes leader: acknowledged writes are not lost to an election.
    'unclean.leader.election.enable=false',
  ];
}

/**
 * A single-node KRaft Kafka (broker and controller in one JVM), or one node of a cluster (`cluster`). The shared stack runs the default instance;
 * crash tests that stop a broker start a private one (own id, ports and data) so other tests keep theirs.
 */
export function kafkaService(instance: KafkaInstance = {}): Service {
  const id = instance.id ?? 'kafka';
  const port = instance.port ?? KAFKA_PORT;
  const controllerPort = instance.controllerPort ?? KAFKA_CONTROLLER_PORT;
  const security = instance.security;
  const cluster = instance.cluster;
  const endpoint = `127.0.0.1:${port}`;
  const data = join(DATA_DIR, id);
  const config = join(STACK_DIR, id, 'server.properties');
  return {
    name: 'kafka',
    id,
    endpoint,
    marker: config,
    startTimeoutMs: 90_000,
    install() {
      return installMavenRuntime({ name: 'Apache Kafka', pom: 'kafka', property: 'kafka.version', version: KAFKA_VERSION, lib: kafkaLib, jar: `kafka_2.13-${KAFKA_VERSION}.jar` });
    },
    prepare() {
      mkdirSync(join(STACK_DIR, id), { recursive: true });
      mkdirSync(data, { recursive: true });
      const listener = security ? 'SASL_SSL' : 'PLAINTEXT';
      writeFileSync(
        config,
        [
          `# Written by stack/services.ts: ${cluster ? `node ${cluster.nodeId} of a KRaft cluster, each node` : 'one KRaft node that is'} both broker and controller.`,
          'process.roles=broker,controller',
          `node.id=${cluster?.nodeId ?? 1}`,
          cluster
            ? `controller.quorum.voters=${cluster.voters.map((v) => `${v.nodeId}@127.0.0.1:${v.controllerPort}`).join(',')}`
            : `controller.quorum.bootstrap.servers=127.0.0.1:${controllerPort}`,
          `listeners=${listener}://127.0.0.1:${port},CONTROLLER://127.0.0.1:${controllerPort}`,
          `advertised.listeners=${listener}://127.0.0.1:${port}`,
          'controller.listener.names=CONTROLLER',
          `inter.broker.listener.name=${listener}`,
          `listener.security.protocol.map=${listener}:${listener},CONTROLLER:PLAINTEXT`,
          ...(security ? secureBrokerConfig(security, join(STACK_DIR, id)) : []),
          `log.dirs=${data}`,
          'num.partitions=1',
          'auto.create.topics.enable=false',
          ...(cluster ? clusterMemberConfig(cluster) : [
            // A single node: internal topics cannot have more than one replica.
            'offsets.topic.replication.factor=1',
            'transaction.state.log.replication.factor=1',
            'transaction.state.log.min.isr=1',
          ]),
          'offsets.topic.num.partitions=10',
          'transaction.state.log.num.partitions=10',
          'group.initial.rebalance.delay.ms=0',
          'log.retention.hours=168',
          '',
        ].join('\n'),
        { mode: 0o600 }, // a secured broker's holds passwords
      );
      if (!existsSync(join(data, 'meta.properties'))) {
        const clusterId = cluster?.clusterId() ?? randomClusterId();
        // SCRAM users of a KRaft cluster are written with the storage (the only way before the broker runs). The
        // tool takes them as arguments: visible in `ps` for the second it runs, during set-up only.
        const scram = security ? [security.broker, ...security.users].flatMap((u) => ['--add-scram', `SCRAM-SHA-512=[name=${u.username},password=${u.password}]`]) : [];
        run(
          'java',
          // A static quorum (the cluster) is formatted as it is; a single node formats itself as a one-voter quorum.
          ['-cp', `${kafkaLib}/*`, 'kafka.tools.StorageTool', 'format', ...(cluster ? [] : ['--standalone']), '--cluster-id', clusterId, '--config', config, ...scram],
          'formatting Kafka storage',
        );
      }
    },
    command() {
      return {
        command: 'java',
        args: [
          '-Xms256m', `-Xmx${instance.heap ?? '512m'}`, '-XX:+UseG1GC', '-XX:MaxGCPauseMillis=20', '-Djava.awt.headless=true',
          `-Dlog4j.configuration=file:${join(PROJECT_ROOT, 'stack', 'kafka', 'log4j.properties')}`,
          '-cp', `${kafkaLib}/*`, 'kafka.Kafka', config,
        ],
      };
    },
    // Healthy: the broker lists itself, which a KRaft broker does once the controller has unfenced it, so topics can
    // be created from the first healthy answer. A new topic reaches the broker's metadata a moment after its
    // creation is answered, per topic and at any age of the broker: ensureTopic waits for that, no start-up check can.
    async healthy() {
      if (security && !existsSync(security.certificates.caCert)) return false;
      const client = new Kafka({
        clientId: 'apilog-stack',
        brokers: [endpoint],
        connectionTimeout: 1000,
        requestTimeout: 2000,
        retry: { retries: 0 },
        logLevel: logLevel.NOTHING,
        ...(security ? kafkaClientSecurity(security, security.broker) : {}),
      });
      const admin = client.admin();
      try {
        await admin.connect();
        const described = await admin.describeCluster();
        // A cluster node: this node among the unfenced brokers (the others may still be starting).
        const listed = cluster ? described.brokers.some((b) => b.nodeId === cluster.nodeId) : described.brokers.length > 0;
        return listed && described.controller !== null;
      } catch {
        return false;
      } finally {
        await admin.disconnect().catch(() => undefined);
      }
    },
  };
}

export const kafka: Service = kafkaService();

// ---------------------------------------------------------------- Apicurio Registry

const registryHome = join(CACHE_DIR, `apicurio-registry-${APICURIO_VERSION}`);
const registryJar = join(registryHome, `apicurio-registry-app-${APICURIO_VERSION}-runner.jar`);

export interface RegistryInstance {
  /** @default 'registry' */
  readonly id?: string;
  /** @default 8081 */
  readonly port?: number;
}

/** Apicurio Registry; the shared stack runs the default instance, benchmarks and crash tests may run their own. */
export function registryService(instance: RegistryInstance = {}): Service {
  const id = instance.id ?? 'registry';
  const port = instance.port ?? REGISTRY_PORT;
  const endpoint = `http://127.0.0.1:${port}/apis/ccompat/v7`;
  const data = join(DATA_DIR, id);
  return {
    name: 'registry',
    id,
    endpoint,
    marker: `-Dquarkus.http.port=${port}`,
    startTimeoutMs: 120_000,
    install() {
      return installAtomically(registryHome, registryJar, (partial) => {
        requireCommand('mvn', 'needed to fetch Apicurio Registry from Maven Central');
        requireCommand('jar', 'the JDK tool that unpacks the registry distribution');
        // The build attaches a runnable distribution (runner jar + lib/) as the `all` zip.
        run(
          'mvn',
          ['-B', '-q', 'dependency:copy', `-Dartifact=io.apicurio:apicurio-registry-app:${APICURIO_VERSION}:zip:all`,
            `-DoutputDirectory=${partial}`],
          `downloading Apicurio Registry ${APICURIO_VERSION} from Maven Central`,
        );
        const zip = join(partial, `apicurio-registry-app-${APICURIO_VERSION}-all.zip`);
        execFileSync('jar', ['xf', zip], { cwd: partial, stdio: 'ignore' });
        rmSync(zip);
        return `Apicurio Registry ${APICURIO_VERSION}`;
      });
    },
    prepare() {
      mkdirSync(data, { recursive: true });
    },
    command() {
      return {
        command: 'java',
        args: [
          '-Xms128m', '-Xmx384m', '-XX:+UseSerialGC', '-Djava.awt.headless=true',
          `-Dquarkus.http.port=${port}`, '-Dquarkus.http.host=127.0.0.1',
          // Schemas persist in an H2 file, so schema ids stay valid across restarts of the stack.
          `-Dapicurio.datasource.url=jdbc:h2:file:${join(data, 'registry')}`,
          '-jar', registryJar,
        ],
      };
    },
    healthy: () => httpOk(`${endpoint}/subjects`),
  };
}

export const registry: Service = registryService();

// ---------------------------------------------------------------- ZooKeeper (the cluster's ClickHouse replication)

const zookeeperLib = join(CACHE_DIR, `zookeeper-${ZOOKEEPER_VERSION}`, 'lib');

export interface ZooKeeperInstance {
  /** @default 'zookeeper' */
  readonly id?: string;
  readonly port: number;
}

/**
 * One of ZooKeeper's four-letter commands over a fresh TCP connection: the answer, or undefined when the server does
 * not answer within `timeoutMs`.
 */
export function fourLetterWord(port: number, word: string, timeoutMs = 2000): Promise<string | undefined> {
  return new Promise((resolve) => {
    let answer = '';
    const socket = createConnection({ host: '127.0.0.1', port });
    const done = (value: string | undefined) => {
      socket.destroy();
      resolve(value);
    };
    socket.setTimeout(timeoutMs, () => done(undefined));
    socket.on('error', () => done(undefined));
    socket.on('connect', () => socket.end(word));
    socket.on('data', (chunk: Buffer) => (answer += chunk.toString('utf8')));
    socket.on('end', () => done(answer));
  });
}

/**
 * A standalone Apache ZooKeeper from Maven Central: what the Debian ClickHouse server (18.16, before ClickHouse
 * Keeper) keeps its replication log and deduplication block ids in. One node: the local cluster's replicas share it.
 */
export function zookeeperService(instance: ZooKeeperInstance): Service {
  const id = instance.id ?? 'zookeeper';
  const { port } = instance;
  const data = join(DATA_DIR, id);
  const config = join(STACK_DIR, id, 'zoo.cfg');
  return {
    name: 'zookeeper',
    id,
    endpoint: `127.0.0.1:${port}`,
    marker: config,
    startTimeoutMs: 60_000,
    install() {
      return installMavenRuntime({ name: 'Apache ZooKeeper', pom: 'zookeeper', property: 'zookeeper.version', version: ZOOKEEPER_VERSION, lib: zookeeperLib, jar: `zookeeper-${ZOOKEEPER_VERSION}.jar` });
    },
    prepare() {
      mkdirSync(join(STACK_DIR, id), { recursive: true });
      mkdirSync(data, { recursive: true });
      writeFileSync(
        config,
        [
          '# Written by stack/services.ts: a standalone ZooKeeper for the ClickHouse replicas of the local cluster.',
          'tickTime=2000',
          `dataDir=${data}`,
          `clientPort=${port}`,
          'clientPortAddress=127.0.0.1',
          'maxClientCnxns=0',
          // No embedded Jetty admin server (it would take port 8080); health goes through `srvr`.
          'admin.enableServer=false',
          '4lw.commands.whitelist=srvr,ruok,mntr',
          // Snapshots and logs of old transactions are purged hourly, keeping three.
          'autopurge.snapRetainCount=3',
          'autopurge.purgeInterval=1',
          '',
        ].join('\n'),
      );
    },
    command() {
      return {
        command: 'java',
        args: [
          '-Xms32m', '-Xmx256m', '-XX:+UseSerialGC', '-Djava.awt.headless=true',
          `-Dlogback.configurationFile=${join(PROJECT_ROOT, 'stack', 'zookeeper', 'logback.xml')}`,
          '-Dzookeeper.jmx.log4j.disable=true',
          '-cp', `${zookeeperLib}/*`, 'org.apache.zookeeper.server.quorum.QuorumPeerMain', config,
        ],
      };
    },
    // `srvr` answers "Mode: standalone" once the server serves requests ("not currently serving requests" before).
    healthy: async () => (await fourLetterWord(port, 'srvr'))?.includes('Mode: ') ?? false,
  };
}

// ---------------------------------------------------------------- ClickHouse server (Debian)

export interface ClickHouseInstance {
  /** @default 'clickhouse' */
  readonly id?: string;
  /** @default 8123 */
  readonly httpPort?: number;
  /** @default 9000 */
  readonly tcpPort?: number;
  /** HTTPS only (on httpPort), and one user with a password instead of the passwordless `default`. @default none */
  readonly security?: ClickHouseSecurity;
  /** A replica of a replicated cluster (cluster.ts): ZooKeeper, macros, the interserver port. @default none */
  readonly replica?: ClickHouseReplica;
}

/**
 * What a server needs to hold replicas of `ReplicatedMergeTree` tables: the ZooKeeper they coordinate through, its
 * macros (`{shard}`, `{replica}`: the tables' ZooKeeper paths and replica names), and the interserver HTTP port the
 * other replicas fetch parts from. `cluster` lists every server of the cluster for `remote_servers` (Distributed
 * tables and `ON CLUSTER` statements).
 */
export interface ClickHouseReplica {
  readonly shard: string;
  readonly replica: string;
  readonly interserverPort: number;
  /** host:port */
  readonly zookeeper: string;
  readonly cluster: { readonly name: string; readonly shards: readonly (readonly { readonly host: string; readonly tcpPort: number }[])[] };
}

/** The lines a replica adds to config.xml. */
export function replicaConfigXml(replica: ClickHouseReplica): string {
  const [zkHost, zkPort] = replica.zookeeper.split(':');
  const shards = replica.cluster.shards.map((servers) => [
    '            <shard>',
    // Each insert goes to one replica, which replicates it: not written to every replica by a Distributed table.
    '                <internal_replication>true</internal_replication>',
    ...servers.map((s) => `                <replica><host>${s.host}</host><port>${s.tcpPort}</port></replica>`),
    '            </shard>',
  ]);
  return [
    `    <interserver_http_host>127.0.0.1</interserver_http_host>`,
    `    <interserver_http_port>${replica.interserverPort}</interserver_http_port>`,
    '    <zookeeper>',
    `        <node><host>${zkHost}</host><port>${zkPort}</port></node>`,
    '        <session_timeout_ms>10000</session_timeout_ms>',
    '    </zookeeper>',
    `    <macros><shard>${replica.shard}</shard><replica>${replica.replica}</replica></macros>`,
    '    <remote_servers>',
    `        <${replica.cluster.name}>`,
    ...shards.flat(),
    `        </${replica.cluster.name}>`,
    '    </remote_servers>',
    // ON CLUSTER statements go through this queue in ZooKeeper.
    '    <distributed_ddl><path>/clickhouse/task_queue/ddl</path></distributed_ddl>',
  ].join('\n');
}

export interface ClickHouseSecurity {
  readonly certificates: Certificates;
  readonly user: SaslUser;
}

/** users.xml of a secured server: its one user, with a SHA-256 password, from loopback only. */
export function secureUsersXml(user: SaslUser): string {
  const hash = createHash('sha256').update(user.password).digest('hex');
  const name = user.username;
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw new StackError(`ClickHouse user name "${name}" must be letters, digits and _`);
  const template = readFileSync(join(PROJECT_ROOT, 'stack', 'clickhouse', 'users.xml'), 'utf8');
  return template
    .replace(/<!--[^]*?-->\n/, '<!-- Written by stack/services.ts: the secured server\'s one user, with a password. -->\n')
    .replace('<default>\n            <password></password>', `<${name}>\n            <password_sha256_hex>${hash}</password_sha256_hex>`)
    .replace(/<\/default>(\s*<\/users>)/, `</${name}>$1`);
}

/** config.xml of a secured server: HTTPS with our certificate instead of HTTP. */
export function secureConfigXml(certificates: Certificates): string {
  const template = readFileSync(join(PROJECT_ROOT, 'stack', 'clickhouse', 'config.xml'), 'utf8');
  // No native TCP port either: HTTPS is the only way in.
  return template.replace(/\s*<tcp_port>\d+<\/tcp_port>/, '').replace(
    '<http_port>8123</http_port>',
    [
      '<https_port>8443</https_port>',
      '    <openSSL><server>',
      `        <certificateFile>${certificates.serverCert}</certificateFile>`,
      `        <privateKeyFile>${certificates.serverKey}</privateKeyFile>`,
      '        <verificationMode>none</verificationMode>',
      '        <loadDefaultCAFile>false</loadDefaultCAFile>',
      '        <cacheSessions>true</cacheSessions>',
      '        <disableProtocols>sslv2,sslv3,tlsv1,tlsv1_1</disableProtocols>',
      '        <preferServerCiphers>true</preferServerCiphers>',
      '    </server></openSSL>',
    ].join('\n'),
  );
}

/** Debian's ClickHouse server on its own data directory; private instances serve restart tests. */
export function clickhouseService(instance: ClickHouseInstance = {}): Service {
  const id = instance.id ?? 'clickhouse';
  const httpPort = instance.httpPort ?? CLICKHOUSE_HTTP_PORT;
  const tcpPort = instance.tcpPort ?? CLICKHOUSE_TCP_PORT;
  const security = instance.security;
  const endpoint = `${security ? 'https' : 'http'}://127.0.0.1:${httpPort}`;
  const data = join(DATA_DIR, id);
  const configDir = join(STACK_DIR, id);
  return {
    name: 'clickhouse',
    id,
    endpoint,
    marker: `--path=${data}/`,
    startTimeoutMs: 60_000,
    install() {
      if (hasCommand('clickhouse-server')) return undefined;
      if (process.getuid?.() !== 0 || !hasCommand('apt-get')) {
        throw new StackError('clickhouse-server is not installed: run `apt-get install clickhouse-server` as root');
      }
      run('apt-get', ['update', '-qq'], 'apt-get update');
      run('apt-get', ['install', '-y', '-qq', 'clickhouse-server', 'clickhouse-client'], 'installing clickhouse-server');
      return 'clickhouse-server (Debian package)';
    },
    prepare() {
      for (const sub of ['', 'tmp', 'user_files', 'format_schemas']) mkdirSync(join(data, sub), { recursive: true });
      // The server writes a preprocessed copy next to its config file: keep both under .stack, out of the sources.
      mkdirSync(configDir, { recursive: true });
      if (security) {
        writeFileSync(join(configDir, 'config.xml'), secureConfigXml(security.certificates));
        writeFileSync(join(configDir, 'users.xml'), secureUsersXml(security.user), { mode: 0o600 });
      } else if (instance.replica) {
        const template = readFileSync(join(PROJECT_ROOT, 'stack', 'clickhouse', 'config.xml'), 'utf8');
        writeFileSync(join(configDir, 'config.xml'), template.replace('</yandex>', `${replicaConfigXml(instance.replica)}\n</yandex>`));
        copyFileSync(join(PROJECT_ROOT, 'stack', 'clickhouse', 'users.xml'), join(configDir, 'users.xml'));
      } else {
        for (const file of ['config.xml', 'users.xml']) copyFileSync(join(PROJECT_ROOT, 'stack', 'clickhouse', file), join(configDir, file));
      }
    },
    command() {
      return {
        command: 'clickhouse-server',
        args: [
          `--config-file=${join(configDir, 'config.xml')}`,
          '--',
          `--path=${data}/`,
          `--tmp_path=${join(data, 'tmp')}/`,
          `--user_files_path=${join(data, 'user_files')}/`,
          `--format_schema_path=${join(data, 'format_schemas')}/`,
          security ? `--https_port=${httpPort}` : `--http_port=${httpPort}`,
          ...(security ? [] : [`--tcp_port=${tcpPort}`]),
          `--logger.log=${join(LOG_DIR, `${id}-server.log`)}`,
          `--logger.errorlog=${join(LOG_DIR, `${id}-server.err.log`)}`,
        ],
      };
    },
    healthy: () => httpOk(`${endpoint}/ping`, 'Ok.', security?.certificates.caCert),
  };
}

export const clickhouse: Service = clickhouseService();

export const SERVICES: Record<ServiceName, Service> = { kafka, registry, clickhouse };
