/**
 * Services of the local cluster (stack/cluster.ts) for an integration test: started if they do not run (all launched
 * first, then waited for: Kafka's quorum nodes are healthy only together), and stopped afterwards only if the test
 * started them. A developer's running cluster is used and left running. Under CI=true a service that does not start
 * fails the test (startService throws), never skips it.
 */
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

/** Starts the services of the cluster that `pick` chooses, unless they run already. */
export async function useClusterServices(pick: (cluster: ClusterStack) => readonly Service[]): Promise<ClusterServices> {
  const cluster = clusterStack();
  const services = pick(cluster);
  const started = services.filter((s) => pidOf(s) === undefined);
  const launched = new Map<Service, Launched>();
  for (const s of started) launched.set(s, await launchService(s, { verbose: false }));
  for (const s of services) await awaitHealthy(s, { verbose: false }, launched.get(s));
  return {
    cluster,
    async stop() {
      for (const s of [...started].reverse()) await stopService(s);
    },
  };
}

/** SIGKILLs a service and starts it again (a crash and a supervisor's restart); resolves once it is healthy. */
export async function restart(service: Service, downMs = 0): Promise<void> {
  await stopService(service, 'SIGKILL');
  if (downMs > 0) await new Promise((r) => setTimeout(r, downMs));
  await startService(service, { verbose: false });
}
