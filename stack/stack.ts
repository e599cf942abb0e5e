/**
 * The local stack: `npm run stack -- up | down | status [kafka|registry|clickhouse ...]`.
 *
 * `up` installs what is missing (downloads cached in CACHE_DIR), starts each service that is not already
 * running, waits for it to be healthy (with a timeout that names the service) and writes `.stack/env`.
 * `down` stops exactly the processes `up` started, by pid. Both are idempotent.
 */
import { writeFileSync, mkdirSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ENV_FILE, LOCAL_CLICKHOUSE_SERVER_URL, LOCAL_KAFKA_BROKERS, LOCAL_SCHEMA_REGISTRY_URL, STACK_DIR } from './endpoints.ts';
import { installClients } from './clients.ts';
import { CLUSTER_DIR, clusterStack, residentBytes, writeClusterEnv, type ClusterStack } from './cluster.ts';
import { SECURE_DIR, prepareSecureStack, secureStack, type SecureStack } from './secureStack.ts';
import { isAlive, livePid, startDetached, stopByPidFile, tail } from './processes.ts';
import {
  DATA_DIR,
  logFileOf,
  pidFileOf,
  SERVICE_NAMES,
  SERVICES,
  StackError,
  type Service,
  type ServiceName,
} from './services.ts';

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const say = (line: string) => process.stderr.write(`${line}\n`);

export interface UpOptions {
  /** Print progress to stderr. @default true */
  readonly verbose?: boolean;
}

/** Starts one service unless it already runs; resolves when it is healthy. */
export async function startService(service: Service, options: UpOptions = {}): Promise<void> {
  await awaitHealthy(service, options, await launchService(service, options));
}

/** A service's process as launchService left it: its pid, and whether this call spawned it. */
export interface Launched {
  readonly pid: number;
  readonly spawned: boolean;
}

/**
 * Starts a service unless it already runs, without waiting for it to be healthy (the nodes of a Kafka quorum must all
 * be started before any of them is).
 */
export async function launchService(service: Service, options: UpOptions = {}): Promise<Launched> {
  const verbose = options.verbose ?? true;
  const pidFile = pidFileOf(service.id);
  const logFile = logFileOf(service.id);
  let pid = livePid(pidFile, service.marker);
  let spawned = false;
  if (pid === undefined) {
    if (await service.healthy()) {
      throw new StackError(
        `${service.id}: something not started by this stack already answers at ${service.endpoint}; stop it or free the port`,
      );
    }
    const installed = service.install();
    if (installed && verbose) say(`  installed ${installed}`);
    service.prepare();
    const { command, args } = service.command();
    pid = startDetached({ command, args, cwd: STACK_DIR, logFile, pidFile });
    spawned = true;
    if (verbose) say(`  ${service.id}: started (pid ${pid}), waiting for ${service.endpoint}`);
  }
  return { pid, spawned };
}

/**
 * Resolves when `service` answers as healthy; a StackError with its log's last lines when it exits or times out.
 * `launched`: what launchService returned, when it was called for this start.
 */
export async function awaitHealthy(service: Service, options: UpOptions = {}, launched?: Launched): Promise<void> {
  const verbose = options.verbose ?? true;
  const pidFile = pidFileOf(service.id);
  const logFile = logFileOf(service.id);
  const spawned = launched?.spawned ?? false;
  const pid = launched?.pid ?? livePid(pidFile, service.marker);
  const started = Date.now();
  while (!(await service.healthy())) {
    // A process this call spawned is ours by construction: it has exited only when it is gone.
    if (spawned && pid !== undefined ? !isAlive(pid) : livePid(pidFile, service.marker) === undefined) {
      throw new StackError(`${service.id} exited during start-up; last lines of ${logFile}:\n${tail(logFile)}`);
    }
    if (Date.now() - started > service.startTimeoutMs) {
      throw new StackError(
        `${service.id} did not become healthy at ${service.endpoint} within ${service.startTimeoutMs / 1000} s; ` +
          `last lines of ${logFile}:\n${tail(logFile)}`,
      );
    }
    await sleep(250);
  }
  if (verbose) say(`  ${service.id}: healthy at ${service.endpoint} (pid ${pid})`);
}

/** Starts the secured stack (secureStack.ts), each service unless it runs already; resolves when all are healthy. */
export async function upSecure(options: UpOptions & { readonly registryUpstream?: string } = {}): Promise<SecureStack> {
  const secure = secureStack(options.registryUpstream === undefined ? {} : { registryUpstream: options.registryUpstream });
  prepareSecureStack(secure);
  for (const service of secure.services) await startService(service, options);
  return secure;
}

/** Stops every service of the secured stack this checkout started (by pid). */
export async function downSecure(verbose = true): Promise<void> {
  for (const service of [...secureStack().services].reverse()) {
    const pid = await stopService(service);
    if (verbose) say(pid === undefined ? `  ${service.id}: not running` : `  ${service.id}: stopped (pid ${pid})`);
  }
}

/**
 * Starts the local cluster (cluster.ts), each service unless it runs already: ZooKeeper first and healthy (18.16 with
 * replicated tables does not start without it: it exits, or hangs loading its tables), then the three Kafka nodes
 * together (a quorum node is healthy only once a majority runs), the registry and the ClickHouse replicas.
 * Resolves when all are healthy; writes `.stack/cluster/env`.
 */
export async function upCluster(options: UpOptions = {}): Promise<ClusterStack> {
  const cluster = clusterStack();
  await startService(cluster.zookeeper, options);
  const rest = [...cluster.brokers, cluster.registry, ...cluster.clickhouse];
  const launched: Launched[] = [];
  for (const service of rest) launched.push(await launchService(service, options));
  for (const [i, service] of rest.entries()) await awaitHealthy(service, options, launched[i]);
  writeClusterEnv(cluster);
  return cluster;
}

/** Stops every service of the local cluster this checkout started (by pid); `clean` also deletes their data. */
export async function downCluster(options: { verbose?: boolean; clean?: boolean } = {}): Promise<void> {
  const cluster = clusterStack();
  const stop = async (service: Service) => {
    const pid = await stopService(service);
    if (options.verbose ?? true) say(pid === undefined ? `  ${service.id}: not running` : `  ${service.id}: stopped (pid ${pid})`);
  };
  for (const service of [...cluster.clickhouse].reverse()) await stop(service);
  await stop(cluster.registry);
  // Together: one by one, the last broker's controlled shutdown waits for a quorum that left before it (30 s, then
  // SIGKILL). Stopped together, each hands its partitions over while the others still run.
  await Promise.all(cluster.brokers.map(stop));
  await stop(cluster.zookeeper);
  if (options.clean) {
    for (const service of cluster.services) rmSync(join(DATA_DIR, service.id), { recursive: true, force: true });
    rmSync(CLUSTER_DIR, { recursive: true, force: true });
  }
}

export interface ClusterServiceStatus {
  readonly id: string;
  readonly pid: number | undefined;
  readonly healthy: boolean;
  readonly endpoint: string;
  /** Resident memory (VmRSS), bytes. */
  readonly rss: number | undefined;
}

export async function statusCluster(): Promise<ClusterServiceStatus[]> {
  return Promise.all(
    clusterStack().services.map(async (service) => {
      const pid = livePid(pidFileOf(service.id), service.marker);
      return { id: service.id, pid, healthy: await service.healthy(), endpoint: service.endpoint, rss: pid === undefined ? undefined : residentBytes(pid) };
    }),
  );
}

export async function up(names: readonly ServiceName[] = SERVICE_NAMES, options: UpOptions = {}): Promise<void> {
  mkdirSync(STACK_DIR, { recursive: true });
  // Kafka and ClickHouse do not depend on each other: install everything first, then start in order.
  for (const name of names) await startService(SERVICES[name], options);
  writeEnvFile();
}

export function writeEnvFile(): void {
  mkdirSync(STACK_DIR, { recursive: true });
  writeFileSync(
    ENV_FILE,
    [
      '# Written by `npm run stack -- up`: the endpoints the local stack serves.',
      `KAFKA_BROKERS=${LOCAL_KAFKA_BROKERS}`,
      `SCHEMA_REGISTRY_URL=${LOCAL_SCHEMA_REGISTRY_URL}`,
      `CLICKHOUSE_URL=${LOCAL_CLICKHOUSE_SERVER_URL}`,
      '',
    ].join('\n'),
  );
}

/** Stops a service started by this stack (shared or private instance). `signal` SIGKILL is for crash tests. */
export async function stopService(
  service: ServiceName | Service,
  signal: NodeJS.Signals = 'SIGTERM',
): Promise<number | undefined> {
  const s = typeof service === 'string' ? SERVICES[service] : service;
  return stopByPidFile(pidFileOf(s.id), s.marker, { signal });
}

export async function down(names: readonly ServiceName[] = SERVICE_NAMES, verbose = true): Promise<void> {
  for (const name of [...names].reverse()) {
    const pid = await stopService(name);
    if (verbose) say(pid === undefined ? `  ${name}: not running` : `  ${name}: stopped (pid ${pid})`);
  }
}

export interface ServiceStatus {
  readonly name: ServiceName;
  readonly pid: number | undefined;
  readonly healthy: boolean;
  readonly endpoint: string;
}

export async function status(names: readonly ServiceName[] = SERVICE_NAMES): Promise<ServiceStatus[]> {
  return Promise.all(
    names.map(async (name) => {
      const service = SERVICES[name];
      return {
        name,
        pid: livePid(pidFileOf(name), service.marker),
        healthy: await service.healthy(),
        endpoint: service.endpoint,
      };
    }),
  );
}

function parseNames(args: string[]): ServiceName[] {
  if (args.length === 0) return [...SERVICE_NAMES];
  for (const a of args) {
    if (!(SERVICE_NAMES as readonly string[]).includes(a)) {
      throw new StackError(`unknown service "${a}" (services: ${SERVICE_NAMES.join(', ')})`);
    }
  }
  return SERVICE_NAMES.filter((n) => args.includes(n));
}

const USAGE = `usage: npm run stack -- <up|down|status> [kafka|registry|clickhouse ...] [--clean]
       npm run stack -- <up|down> --secure
       npm run stack -- <up|down|status> --cluster [--clean]
       npm run stack -- clients

  up       install (cached) and start the services, wait until healthy, write .stack/env
  down     stop the services this stack started (by pid); --clean also deletes their data
  status   show each service's pid and health; exits 1 if any is down
  clients  install the third-party Kafka clients of the interop tests (Python, JVM, PHP; cached)
  --secure the secured variant on 4xxxx ports: Kafka SASL_SSL (SCRAM-SHA-512), the registry behind TLS and auth
           (nginx), ClickHouse over HTTPS with a password user; credentials in .stack/secure/env
  --cluster the local cluster on 53xxx ports: three Kafka nodes (KRaft, RF 3, min.insync.replicas 2), a registry,
           ZooKeeper and two ClickHouse 18.16 replicas of one shard; endpoints in .stack/cluster/env; status shows
           each process's resident memory`;

async function main(argv: string[]): Promise<number> {
  const [verb, ...rest] = argv;
  if (verb === 'clients') {
    const t0 = Date.now();
    for (const line of installClients()) say(`  ${line}`);
    say(`stack clients: ready in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    return 0;
  }
  const clean = rest.includes('--clean');
  if (rest.includes('--secure') && (verb === 'up' || verb === 'down')) {
    const t0 = Date.now();
    say(`stack ${verb} --secure`);
    if (verb === 'down') {
      await downSecure();
      return 0;
    }
    const secure = await upSecure();
    say(`stack up --secure: ready in ${((Date.now() - t0) / 1000).toFixed(1)} s; Kafka ${secure.endpoints.brokers}, registry ${secure.endpoints.registryBasic}, ClickHouse ${secure.endpoints.clickhouse}`);
    say(`  credentials and endpoints: ${join(SECURE_DIR, 'env')} (load with: set -a; . ${join(SECURE_DIR, 'env')}; set +a)`);
    return 0;
  }
  if (rest.includes('--cluster')) return clusterCommand(verb, clean);
  const names = parseNames(rest.filter((a) => !a.startsWith('--')));
  switch (verb) {
    case 'up': {
      const t0 = Date.now();
      say(`stack up: ${names.join(', ')}`);
      await up(names);
      say(`stack up: ready in ${((Date.now() - t0) / 1000).toFixed(1)} s; endpoints in ${ENV_FILE}`);
      return 0;
    }
    case 'down':
      say(`stack down: ${names.join(', ')}`);
      await down(names);
      if (clean) {
        rmSync(DATA_DIR, { recursive: true, force: true });
        rmSync(join(STACK_DIR, 'chdb'), { recursive: true, force: true });
        say(`  data deleted`);
      }
      return 0;
    case 'status': {
      const rows = await status(names);
      for (const r of rows) {
        const state = r.healthy ? 'up' : r.pid !== undefined ? 'starting/unhealthy' : 'down';
        process.stdout.write(`${r.name.padEnd(11)} ${state.padEnd(19)} ${String(r.pid ?? '-').padEnd(8)} ${r.endpoint}\n`);
      }
      return rows.every((r) => r.healthy) ? 0 : 1;
    }
    case undefined:
    case '--help':
    case '-h':
    case 'help':
      process.stdout.write(`${USAGE}\n`);
      return verb === undefined ? 2 : 0;
    default:
      process.stderr.write(`unknown command "${verb}"\n${USAGE}\n`);
      return 2;
  }
}

const mib = (bytes: number | undefined) => (bytes === undefined ? '-' : `${Math.round(bytes / 1048576)} MiB`);

async function clusterCommand(verb: string | undefined, clean: boolean): Promise<number> {
  const t0 = Date.now();
  switch (verb) {
    case 'up': {
      say('stack up --cluster');
      const cluster = await upCluster();
      const rss = (await statusCluster()).reduce((sum, s) => sum + (s.rss ?? 0), 0);
      say(`stack up --cluster: ready in ${((Date.now() - t0) / 1000).toFixed(1)} s, ${mib(rss)} resident; Kafka ${cluster.endpoints.brokers.join(',')}, ` +
        `registry ${cluster.endpoints.registry}, ClickHouse ${cluster.endpoints.clickhouse.join(',')}`);
      say(`  endpoints: ${join(CLUSTER_DIR, 'env')} (load with: set -a; . ${join(CLUSTER_DIR, 'env')}; set +a)`);
      return 0;
    }
    case 'down':
      say('stack down --cluster');
      await downCluster({ clean });
      if (clean) say('  data deleted');
      return 0;
    case 'status': {
      const rows = await statusCluster();
      for (const r of rows) {
        const state = r.healthy ? 'up' : r.pid !== undefined ? 'starting/unhealthy' : 'down';
        process.stdout.write(`${r.id.padEnd(20)} ${state.padEnd(19)} ${String(r.pid ?? '-').padEnd(8)} ${mib(r.rss).padStart(8)}  ${r.endpoint}\n`);
      }
      process.stdout.write(`${'total'.padEnd(49)}${mib(rows.reduce((sum, r) => sum + (r.rss ?? 0), 0)).padStart(8)}\n`);
      return rows.every((r) => r.healthy) ? 0 : 1;
    }
    default:
      process.stderr.write(`unknown command "${verb ?? ''}" with --cluster\n${USAGE}\n`);
      return 2;
  }
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === resolve(process.argv[1])) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (error: unknown) => {
      process.stderr.write(`stack: ${error instanceof Error ? error.message : String(error)}\n`);
      process.exit(1);
    },
  );
}
