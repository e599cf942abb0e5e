/**
 * docker-compose.yml and the Dockerfile cannot run here (no Docker engine), so they are checked as data: the same
 * roles, versions and endpoints as the native stack in stack/, each service with a healthcheck; the image built as
 * the CLI needs it (every file the CLI imports copied, nothing of it ignored by .dockerignore, not root, compilers
 * left in the build stage); the consumer started with options `apilog consume` has, after the migrations and the
 * topics, restarted when it exits, given longer than its shutdown deadline to stop, and probed on its metrics port;
 * Prometheus and Grafana given files that exist, at the paths their configuration names, pointing at the services
 * and ports compose runs, and every dashboard panel at a provisioned data source of its type.
 */
import { Command } from 'commander';
import { DockerfileParser, type Instruction } from 'dockerfile-ast';
import { validate } from 'dockerfile-utils';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, posix, relative, resolve } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { registerConsume } from '../../cli/consume.ts';
import { registerMigrate } from '../../cli/migrate.ts';
import { deadLetterTopicFor } from '../../consumer/deadLetters.ts';
import { DEFAULT_TUNING } from '../../consumer/options.ts';
import { CLICKHOUSE_HTTP_PORT, DEFAULT_TOPIC, KAFKA_PORT, PROJECT_ROOT, REGISTRY_PORT } from '../../stack/endpoints.ts';
import { APICURIO_VERSION, KAFKA_VERSION } from '../../stack/services.ts';

// CommonJS `module.exports = factory` whose types declare a default export: required, typed as declared.
const ignore = createRequire(import.meta.url)('@balena/dockerignore') as typeof import('@balena/dockerignore').default;

interface ComposeService {
  image?: string;
  build?: string | { context: string; dockerfile?: string };
  ports?: string[];
  expose?: string[];
  environment?: Record<string, string>;
  healthcheck?: { test?: string[] | string; interval?: string; retries?: number; disable?: boolean };
  depends_on?: Record<string, { condition: string }>;
  command?: string[] | string;
  restart?: string;
  stop_grace_period?: string;
  volumes?: string[];
  profiles?: string[];
}

const compose = parse(readFileSync(`${PROJECT_ROOT}/docker-compose.yml`, 'utf8'), { merge: true }) as { services: Record<string, ComposeService> };
const services = compose.services;
const service = (name: string): ComposeService => {
  const s = services[name];
  if (s === undefined) throw new Error(`docker-compose.yml has no service ${name}`);
  return s;
};
const words = (command: string[] | string | undefined): string[] => (Array.isArray(command) ? command : (command ?? '').split(/\s+/).filter(Boolean));

/** Compose durations ("40s", "1m30s") in milliseconds. */
function durationMs(text: string): number {
  const parts = [...text.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)];
  expect(parts.map((p) => p[0]).join(''), `duration ${text}`).toBe(text);
  const unit: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  return parts.reduce((sum, p) => sum + Number(p[1]) * unit[p[2]!]!, 0);
}

// --- the Dockerfile, parsed as Docker reads it ---
const DOCKERFILE = readFileSync(join(PROJECT_ROOT, 'Dockerfile'), 'utf8');
const dockerfile = DockerfileParser.parse(DOCKERFILE);
const froms = dockerfile.getFROMs();
const finalStageLine = froms[froms.length - 1]!.getRange().start.line;
/** Instructions of the stage the image is made of (after the last FROM). */
const finalStage = dockerfile.getInstructions().filter((i) => i.getRange().start.line > finalStageLine);
const ofKind = (kind: string, list: Instruction[] = finalStage) => list.filter((i) => i.getKeyword() === kind);
/** JSON-form arguments (CMD ["a", "b"]) as strings. */
const jsonArgs = (i: Instruction): string[] => JSON.parse(i.getRawArgumentsContent() ?? '[]') as string[];

/**
 * Every project file the CLI can load at run time: bin/apilog.js, then every relative import (static, dynamic, type
 * imports too, which only makes the check stricter) and every file read through `new URL('…', import.meta.url)`.
 */
function runtimeFiles(entry: string): string[] {
  const seen = new Set<string>();
  const queue = [resolve(PROJECT_ROOT, entry)];
  while (queue.length > 0) {
    const file = queue.pop()!;
    if (seen.has(file)) continue;
    seen.add(file);
    if (statSync(file).isDirectory()) continue;
    const text = readFileSync(file, 'utf8');
    const specifiers = ts.preProcessFile(text, true, true).importedFiles.map((f) => f.fileName);
    for (const m of text.matchAll(/new URL\(\s*['"](\.{1,2}\/[^'"]*)['"]\s*,\s*import\.meta\.url\s*\)/g)) specifiers.push(m[1]!);
    for (const spec of specifiers) {
      if (!spec.startsWith('.')) continue;
      const target = resolve(dirname(file), spec);
      expect(existsSync(target), `${relative(PROJECT_ROOT, file)} imports ${spec}, which does not exist`).toBe(true);
      queue.push(target);
    }
  }
  return [...seen].map((f) => relative(PROJECT_ROOT, f)).sort();
}

/** What `apilog <sub>` accepts: each --flag in a compose command must be one of its options, with a valid value. */
function checkCliArguments(args: readonly string[]): void {
  const program = new Command('apilog');
  registerConsume(program);
  registerMigrate(program);
  const [name, ...rest] = args;
  const sub = program.commands.find((c) => c.name() === name);
  expect(sub, `apilog has no subcommand ${name}`).toBeDefined();
  for (let i = 0; i < rest.length; i++) {
    const option = sub!.options.find((o) => o.long === rest[i]);
    expect(option, `apilog ${name} has no option ${rest[i]}`).toBeDefined();
    if (option!.required || option!.optional) {
      const value = rest[++i];
      expect(value, `${rest[i - 1]} needs a value`).toBeDefined();
      if (option!.parseArg) option!.parseArg(value!, undefined);
      if (option!.argChoices) expect(option!.argChoices).toContain(value);
    }
  }
}

describe('docker-compose.yml', () => {
  it('has the infrastructure, the one-shot jobs and the consumer (the cluster profile: dockerComposeCluster.test.ts)', () => {
    expect(Object.keys(services).filter((name) => services[name]!.profiles === undefined).sort()).toEqual(['apilog-consumer', 'apilog-migrate', 'clickhouse', 'grafana', 'kafka', 'kafka-topics', 'prometheus', 'schema-registry']);
  });

  it('pins the same Kafka and registry versions as stack/', () => {
    expect(service('kafka').image).toBe(`apache/kafka:${KAFKA_VERSION}`);
    expect(service('kafka-topics').image).toBe(`apache/kafka:${KAFKA_VERSION}`);
    expect(service('schema-registry').image).toBe(`apicurio/apicurio-registry:${APICURIO_VERSION}`);
    expect(service('clickhouse').image).toMatch(/^clickhouse\/clickhouse-server:\d+\.\d+/);
  });

  it('publishes the local stack endpoints on the host', () => {
    const hostPort = (name: string) => (service(name).ports ?? []).map((p) => Number(p.split(':')[0]));
    expect(hostPort('kafka')).toContain(KAFKA_PORT);
    expect(hostPort('schema-registry')).toContain(REGISTRY_PORT);
    expect(hostPort('clickhouse')).toContain(CLICKHOUSE_HTTP_PORT);
    expect(service('kafka').environment!['KAFKA_ADVERTISED_LISTENERS']).toContain(`127.0.0.1:${KAFKA_PORT}`);
  });

  it('gives every infrastructure service a healthcheck that probes its own port', () => {
    const probes: Record<string, string> = { kafka: '9092', 'schema-registry': '/apis/ccompat/v7', clickhouse: '8123/ping' };
    for (const [name, needle] of Object.entries(probes)) {
      const hc = service(name).healthcheck;
      expect(hc, `${name} healthcheck`).toBeDefined();
      expect(words(hc!.test).join(' ')).toContain(needle);
      expect(hc!.retries).toBeGreaterThan(0);
    }
  });

  it('keeps Kafka topics explicit, as the stack does', () => {
    expect(service('kafka').environment!['KAFKA_AUTO_CREATE_TOPICS_ENABLE']).toBe('false');
  });

  const internalKafka = () => `kafka:${/INTERNAL:\/\/kafka:(\d+)/.exec(service('kafka').environment!['KAFKA_ADVERTISED_LISTENERS']!)![1]}`;

  it('wires the consumer to the other services by name and waits for them to be healthy', () => {
    const consumer = service('apilog-consumer');
    const env = consumer.environment!;
    expect(env['KAFKA_BROKERS']).toBe(internalKafka());
    expect(env['SCHEMA_REGISTRY_URL']).toMatch(/^http:\/\/schema-registry:8080\/apis\/ccompat\/v7$/);
    expect(env['CLICKHOUSE_URL']).toBe('http://clickhouse:8123');
    expect(env['APILOG_TOPIC']).toBe(DEFAULT_TOPIC);
    for (const dep of ['kafka', 'schema-registry', 'clickhouse']) {
      expect(consumer.depends_on?.[dep]?.condition).toBe('service_healthy');
    }
  });

  it('creates the topic and its dead-letter topic before the consumer starts', () => {
    const topics = service('kafka-topics');
    const script = words(topics.command).join(' ');
    const created = [...script.matchAll(/kafka-topics\.sh --bootstrap-server (\S+) --create --if-not-exists --topic (\S+) --partitions (\d+)/g)];
    expect(created.map((m) => m[1])).toEqual([internalKafka(), internalKafka()]);
    const topic = service('apilog-consumer').environment!['APILOG_TOPIC']!;
    expect(created.map((m) => m[2]).sort()).toEqual([topic, deadLetterTopicFor(topic)].sort());
    expect(topics.depends_on?.['kafka']?.condition).toBe('service_healthy');
    expect(service('apilog-consumer').depends_on?.['kafka-topics']?.condition).toBe('service_completed_successfully');
  });

  it('runs the migrations with the same image and ClickHouse before the consumer starts', () => {
    const migrate = service('apilog-migrate');
    const consumer = service('apilog-consumer');
    expect(migrate.build).toEqual(consumer.build);
    expect(migrate.image).toBe(consumer.image);
    expect(words(migrate.command)[0]).toBe('migrate');
    checkCliArguments(words(migrate.command));
    expect(migrate.environment!['CLICKHOUSE_URL']).toBe(consumer.environment!['CLICKHOUSE_URL']);
    expect(migrate.depends_on?.['clickhouse']?.condition).toBe('service_healthy');
    expect(migrate.restart).toBe('no');
    // A one-shot command serves no /readyz: the image's health check would call it unhealthy.
    expect(migrate.healthcheck?.disable).toBe(true);
    expect(consumer.depends_on?.['apilog-migrate']?.condition).toBe('service_completed_successfully');
  });

  it('builds the consumer from the Dockerfile and starts it with options `apilog consume` has', () => {
    const consumer = service('apilog-consumer');
    expect(consumer.build).toBe('.');
    const args = words(consumer.command);
    expect(args[0]).toBe('consume');
    checkCliArguments(args);
    // Metrics on the container's address, where Prometheus can reach them (the default is 127.0.0.1).
    expect(args[args.indexOf('--metrics-host') + 1]).toBe('0.0.0.0');
  });

  it('restarts the consumer and lets it finish its batch on stop', () => {
    const consumer = service('apilog-consumer');
    expect(['always', 'unless-stopped', 'on-failure']).toContain(consumer.restart);
    // Docker sends SIGKILL after stop_grace_period (default 10 s): longer than the consumer's shutdown deadline.
    expect(durationMs(consumer.stop_grace_period ?? '10s')).toBeGreaterThan(DEFAULT_TUNING.shutdownDeadlineMs);
  });

  it('exposes the metrics port to the other containers without a fixed host port (replicas can scale)', () => {
    const consumer = service('apilog-consumer');
    const args = words(consumer.command);
    const port = args[args.indexOf('--metrics-port') + 1];
    expect(consumer.expose).toContain(port);
    expect(consumer.ports ?? []).toEqual([]);
  });
});

describe('Dockerfile', () => {
  it('passes the Dockerfile linter (dockerfile-utils, as in the VS Code Docker extension)', () => {
    expect(validate(DOCKERFILE).map((d) => `line ${d.range.start.line + 1}: ${d.message}`)).toEqual([]);
  });

  it('is multi-stage: dependencies are built in one stage and copied into a runtime stage without compilers', () => {
    expect(froms.length).toBeGreaterThanOrEqual(2);
    const stages = froms.map((f) => f.getBuildStage());
    const copiedFrom = ofKind('COPY').map((c) => dockerfile.getCOPYs().find((x) => x.getRange().start.line === c.getRange().start.line)!.getFromFlag()?.getValue());
    expect([...new Set(copiedFrom.filter((s) => s !== undefined && s !== null))]).toEqual([stages[0]]);
    for (const run of ofKind('RUN')) expect(run.getRawArgumentsContent()).not.toMatch(/apt-get install|npm (install|ci)/);
    expect(dockerfile.getInstructions().some((i) => i.getKeyword() === 'RUN' && /--omit=dev/.test(i.getRawArgumentsContent() ?? ''))).toBe(true);
  });

  it('runs as a user other than root', () => {
    const users = ofKind('USER');
    expect(users.length).toBeGreaterThan(0);
    expect(users[users.length - 1]!.getRawArgumentsContent()).not.toMatch(/^(root|0)(:|$)/);
  });

  it('copies every file the CLI loads at run time, and .dockerignore keeps none of them out', () => {
    const files = runtimeFiles('bin/apilog.js');
    expect(files).toContain('cli/consume.ts');
    expect(files).toContain('schemas/clickhouse/migrations');
    const sources = ofKind('COPY')
      .filter((c) => !/--from=/.test(c.getRawArgumentsContent() ?? ''))
      .flatMap((c) => c.getArguments().slice(0, -1).map((a) => a.getValue().replace(/^\.\//, '').replace(/\/$/, '')));
    // dist/ (what bin/apilog.js runs) is built in the image: copied from the stage whose install ran the build.
    const buildStage = froms[0]!.getBuildStage();
    const fromBuild = dockerfile.getCOPYs().filter((c) => c.getRange().start.line > finalStageLine && c.getFromFlag()?.getValue() === buildStage);
    expect(fromBuild.map((c) => c.getArguments().map((a) => a.getValue())), 'the runtime stage copies dist/ from the build stage').toContainEqual(['/app/dist', './dist']);
    const buildRuns = ofKind('RUN', dockerfile.getInstructions().filter((i) => i.getRange().start.line < finalStageLine));
    expect(buildRuns.some((r) => /npm install/.test(r.getRawArgumentsContent() ?? '') && /dist\/cli\/main\.js/.test(r.getRawArgumentsContent() ?? ''))).toBe(true);
    const fromContext = files.filter((f) => !f.startsWith('dist/'));
    const copied = (file: string) => sources.some((s) => file === s || file.startsWith(`${s}/`));
    expect(fromContext.filter((f) => !copied(f))).toEqual([]);
    const ignored = ignore().add(readFileSync(join(PROJECT_ROOT, '.dockerignore'), 'utf8').split('\n'));
    expect(fromContext.filter((f) => ignored.ignores(f))).toEqual([]);
    expect(sources.filter((s) => ignored.ignores(s))).toEqual([]);
  });

  it('starts the CLI and, by default, the consumer with its metrics on the container address', () => {
    expect(jsonArgs(ofKind('ENTRYPOINT')[0]!)).toEqual(['node', 'bin/apilog.js']);
    const cmd = jsonArgs(ofKind('CMD')[0]!);
    checkCliArguments(cmd);
    expect(cmd[cmd.indexOf('--metrics-host') + 1]).toBe('0.0.0.0');
  });

  it('probes /readyz on the port the image exposes and compose starts the consumer with', () => {
    const healthchecks = ofKind('HEALTHCHECK');
    expect(healthchecks).toHaveLength(1);
    const probe = healthchecks[0]!.getRawArgumentsContent() ?? '';
    const url = /http:\/\/127\.0\.0\.1:(\d+)\/readyz/.exec(probe);
    expect(url, 'HEALTHCHECK probes /readyz').not.toBeNull();
    const exposed = ofKind('EXPOSE').flatMap((e) => e.getArguments().map((a) => a.getValue()));
    expect(exposed).toContain(url![1]);
    const args = words(service('apilog-consumer').command);
    expect(args[args.indexOf('--metrics-port') + 1]).toBe(url![1]);
    const cmd = jsonArgs(ofKind('CMD')[0]!);
    expect(cmd[cmd.indexOf('--metrics-port') + 1]).toBe(url![1]);
  });
});

/** The file on this checkout that a path inside a service's container is, through its bind mounts ("./host:/in[:ro]"). */
function hostPath(name: string, inContainer: string): string {
  const mounts = (service(name).volumes ?? [])
    .map((v) => v.split(':'))
    .filter(([host]) => host!.startsWith('./'))
    .map(([host, target]) => ({ host: host!, target: target! }))
    .sort((a, b) => b.target.length - a.target.length);
  const mount = mounts.find((m) => inContainer === m.target || inContainer.startsWith(`${m.target}/`));
  if (mount === undefined) throw new Error(`${name}: nothing is mounted at ${inContainer}`);
  return join(PROJECT_ROOT, mount.host, posix.relative(mount.target, inContainer));
}
const yamlAt = (file: string) => parse(readFileSync(file, 'utf8')) as unknown;
/** host:port of an http:// URL. */
const hostAndPort = (url: string) => /^https?:\/\/([^/:]+):(\d+)/.exec(url)!.slice(1);
/** The port a service listens on inside the network, from its published ports ("host:container"). */
const containerPorts = (name: string) => (service(name).ports ?? []).map((p) => p.split(':').at(-1)!);

describe('Prometheus and Grafana in docker-compose.yml', () => {
  it('gives Prometheus its configuration and rules at the paths it reads, and scrapes every consumer replica on its metrics port', () => {
    const args = words(service('prometheus').command);
    const configPath = args.find((a) => a.startsWith('--config.file='))!.split('=')[1]!;
    const config = yamlAt(hostPath('prometheus', configPath)) as {
      rule_files: string[];
      scrape_configs: { job_name: string; dns_sd_configs?: { names: string[]; type: string; port: number }[] }[];
    };
    for (const rules of config.rule_files) expect(existsSync(hostPath('prometheus', rules)), rules).toBe(true);
    const job = config.scrape_configs.find((c) => c.job_name === 'apilog-consumer')!;
    const consumerArgs = words(service('apilog-consumer').command);
    expect(job.dns_sd_configs).toEqual([expect.objectContaining({ names: ['apilog-consumer'], type: 'A', port: Number(consumerArgs[consumerArgs.indexOf('--metrics-port') + 1]) })]);
    expect(service('prometheus').restart).toBe('unless-stopped');
  });

  it('installs the ClickHouse data source plugin in Grafana and provisions the data sources, pointed at the compose services', () => {
    const grafana = service('grafana');
    const plugin = /^grafana-clickhouse-datasource@(\d+\.\d+\.\d+)$/.exec(grafana.environment!['GF_PLUGINS_PREINSTALL_SYNC'] ?? '');
    expect(plugin, 'GF_PLUGINS_PREINSTALL_SYNC pins the plugin').not.toBeNull();
    const dir = hostPath('grafana', '/etc/grafana/provisioning/datasources');
    const sources = readdirSync(dir).flatMap((f) => (yamlAt(join(dir, f)) as { datasources: { uid: string; type: string; url?: string; jsonData?: Record<string, unknown> }[] }).datasources);
    const clickhouse = sources.find((s) => s.type === 'grafana-clickhouse-datasource')!;
    const [chHost, chPort] = hostAndPort(service('apilog-consumer').environment!['CLICKHOUSE_URL']!);
    expect(clickhouse.jsonData).toMatchObject({ host: chHost, port: Number(chPort), protocol: 'http' });
    expect(services[chHost!]).toBeDefined();
    const prometheus = sources.find((s) => s.type === 'prometheus')!;
    const [promHost, promPort] = hostAndPort(prometheus.url!);
    expect(services[promHost!]).toBeDefined();
    expect(containerPorts(promHost!)).toContain(promPort);
    expect(grafana.depends_on?.['clickhouse']?.condition).toBe('service_healthy');
  });

  it("provisions the dashboards from the folder the provider reads, each panel on a provisioned data source of its type", () => {
    const dir = hostPath('grafana', '/etc/grafana/provisioning/dashboards');
    const providers = readdirSync(dir).flatMap((f) => (yamlAt(join(dir, f)) as { providers: { type: string; options: { path: string } }[] }).providers);
    expect(providers).toHaveLength(1);
    const dashboardsDir = hostPath('grafana', providers[0]!.options.path);
    expect(dashboardsDir).toBe(join(PROJECT_ROOT, 'deploy/grafana/dashboards'));
    const files = readdirSync(dashboardsDir).filter((f) => f.endsWith('.json')).sort();
    expect(files).toEqual(['analysts.json', 'operators.json']);
    const sourcesDir = hostPath('grafana', '/etc/grafana/provisioning/datasources');
    const sources = new Map(readdirSync(sourcesDir).flatMap((f) => (yamlAt(join(sourcesDir, f)) as { datasources: { uid: string; type: string }[] }).datasources).map((s) => [s.uid, s.type]));
    type Panel = { title: string; datasource?: { type: string; uid: string }; targets?: { datasource?: { type: string; uid: string } }[]; panels?: Panel[] };
    const flat = (list: Panel[]): Panel[] => list.flatMap((p) => [p, ...flat(p.panels ?? [])]);
    const uids = new Set<string>();
    for (const file of files) {
      const dashboard = JSON.parse(readFileSync(join(dashboardsDir, file), 'utf8')) as { uid: string; panels: Panel[]; templating: { list: { datasource?: { type: string; uid: string } }[] } };
      expect(uids.has(dashboard.uid), `${file}: uid ${dashboard.uid} is unique`).toBe(false);
      uids.add(dashboard.uid);
      const refs = [
        ...flat(dashboard.panels).flatMap((p) => [p.datasource, ...(p.targets ?? []).map((t) => t.datasource)]),
        ...dashboard.templating.list.map((v) => v.datasource),
      ].filter((r): r is { type: string; uid: string } => r !== undefined);
      expect(refs.length).toBeGreaterThan(0);
      for (const ref of refs) expect(sources.get(ref.uid), `${file}: data source ${ref.uid}`).toBe(ref.type);
    }
  });
});
