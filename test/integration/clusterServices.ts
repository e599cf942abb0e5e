/**
 * Services of the local cluster (stack/cluster.ts) for an integration test: started if they do not run (all launched
 * first, then waited for: Kafka's quorum nodes are healthy only together), and stopped afterwards only if the test
 * started them. A developer's running cluster is used and left running. Under CI=true a service that does not start
 * fails the test (startService throws), never skips it.
 */
import { Kafka, logLevel } from 'kafkajs';
import { clusterStack, type ClusterStack } from '../../stack/cluster.ts';
import { livePid } from '../../stack/processes.ts';
import { pidFileOf, type Service } from '../../stack/services.ts';
import { awaitHealthy, launchService, startService, stopService, type Launched } from '../../stack/stack.ts';

export interface ClusterServices {
  readonly cluster: ClusterStack;
  /** Stops the services this call started, in reverse order. */
  stop(): Promise<void>;
}

export const pidOf = (service: Service) => livePid(pidFileOf(service.id), service.marker);

/**
 * Starts the services of the cluster that `pick` chooses, unless they run already: the JVMs first (launched together,
 * not waited for one by one), then, once ZooKeeper is healthy, the ClickHouse servers (18.16 with replicated tables
 * fails to start without it: it exits, or hangs loading its tables); then waits for all. `stop` stops the brokers
 * together (one by one, the last one's controlled shutdown waits 30 s for a quorum that already left).
 */
export async function useClusterServices(pick: (cluster: ClusterStack) => readonly Service[]): Promise<ClusterServices> {
  const cluster = clusterStack();
  const services = pick(cluster);
  const started = services.filter((s) => pidOf(s) === undefined);
  const isClickHouse = (s: Service) => cluster.clickhouse.includes(s);
  const stop = async () => {
    const mine = [...started].reverse();
    for (const s of mine.filter(isClickHouse)) await stopService(s);
    await Promise.all(mine.filter((s) => cluster.brokers.includes(s)).map((s) => stopService(s)));
    for (const s of mine.filter((s) => !isClickHouse(s) && !cluster.brokers.includes(s))) await stopService(s);
  };
  try {
    const launched = new Map<Service, Launched>();
    for (const s of started.filter((s) => !isClickHouse(s))) launched.set(s, await launchService(s, { verbose: false }));
    if (started.some(isClickHouse) && services.includes(cluster.zookeeper)) {
      await awaitHealthy(cluster.zookeeper, { verbose: false }, launched.get(cluster.zookeeper));
    }
    for (const s of started.filter(isClickHouse)) launched.set(s, await launchService(s, { verbose: false }));
    for (const s of services) await awaitHealthy(s, { verbose: false }, launched.get(s));
    const brokers = services.filter((s) => cluster.brokers.includes(s));
    if (brokers.length > 1) await untilBrokersAgree(brokers.map((b) => b.endpoint));
  } catch (error) {
    await stop(); // nothing of ours left running when the test cannot start
    throw error;
  }
  return { cluster, stop };
}

/**
 * Waits until every broker's metadata lists every broker. Each one is healthy once it lists itself, but under load
 * another broker's metadata learns of it a moment later: a test that asked the cluster right after start-up saw two
 * brokers of three (describeCluster answered by a broker that had not heard of the third yet).
 */
async function untilBrokersAgree(endpoints: readonly string[], timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const seen = await Promise.all(endpoints.map(async (endpoint) => {
      const admin = new Kafka({ clientId: 'apilog-test', brokers: [endpoint], connectionTimeout: 2000, requestTimeout: 5000, retry: { retries: 0 }, logLevel: logLevel.NOTHING }).admin();
      try {
        await admin.connect();
        return (await admin.describeCluster()).brokers.length;
      } catch {
        return 0;
      } finally {
        await admin.disconnect().catch(() => undefined);
      }
    }));
    if (seen.every((n) => n === endpoints.length)) return;
    if (Date.now() > deadline) throw new Error(`the brokers did not agree on their cluster within ${timeoutMs} ms: each listed ${seen.join(', ')} of ${endpoints.length}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

/** SIGKILLs a service and starts it again (a crash and a supervisor's restart); resolves once it is healthy. */
export async function restart(service: Service, downMs = 0): Promise<void> {
  await stopService(service, 'SIGKILL');
  if (downMs > 0) await new Promise((r) => setTimeout(r, downMs));
  await startService(service, { verbose: false });
}
