/**
 * `npm run bench:middleware`: what logging every request costs an Express 5 and a Fastify 5 service, side by side
 * with what users would pick instead, in the same run:
 *   plain    the app alone
 *   apilog   apilogExpress / apilogFastify with the real SDK sending to Kafka (shared local broker, a fresh topic)
 *   worker   the same, the SDK sending from its worker thread (`worker: true`)
 *   pino     pino-http (Express) / Fastify's own logger (Fastify, pino inside), writing to /dev/null
 * Each variant is its own service process (bench/middlewareService.ts); autocannon (this process) loads
 * `GET /v1/users/:id` over loopback. Rounds alternate the variants (plain, apilog, pino, then the next round
 * starts with the next one); a warm-up round is not counted. Per run: req/s, and the service process's CPU
 * (user + system) per request, measured from the load's start until every apilog event of the window is
 * acknowledged by Kafka (so the SDK's encoding and sending are counted), of the whole process (every thread) and of
 * its main thread alone (the one that serves the requests; Linux /proc). Medians over the rounds.
 * Last line per framework: one JSON object.
 *
 * The service loads the SDK from dist/, as the package ships it (`prebench:middleware` builds it).
 *
 * Env: BENCH_ROUNDS (default 4), BENCH_SECONDS (per run, default 5), BENCH_CONNECTIONS (default 20),
 * BENCH_FRAMEWORKS (default express,fastify), BENCH_NOOP=1 (also the middleware with a do-nothing logger), BENCH_CPU_PROF (a directory: service processes run with --cpu-prof),
 * KAFKA_BROKERS, SCHEMA_REGISTRY_URL.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { loadavg } from 'node:os';
import autocannon from 'autocannon';
import { ensureTopic } from '../producer/topic.ts';
import { createKafka } from '../runtime/kafka.ts';
import { LOCAL_KAFKA_BROKERS, LOCAL_SCHEMA_REGISTRY_URL, readStackEnv } from '../stack/endpoints.ts';
import { median } from './measure.ts';
import type { Framework, ServiceMessage, Variant } from './middlewareService.ts';

const ROUNDS = Number(process.env['BENCH_ROUNDS'] ?? 4);
const SECONDS = Number(process.env['BENCH_SECONDS'] ?? 5);
const CONNECTIONS = Number(process.env['BENCH_CONNECTIONS'] ?? 20);
const FRAMEWORKS = (process.env['BENCH_FRAMEWORKS'] ?? 'express,fastify').split(',') as Framework[];
const CPU_PROF = process.env['BENCH_CPU_PROF'];
// BENCH_NOOP=1 adds apilog's middleware with a logger that does nothing: the middleware's share of apilog's cost.
const VARIANTS: readonly Variant[] = process.env['BENCH_NOOP'] === '1' ? ['plain', 'apilog', 'worker', 'pino', 'noop'] : ['plain', 'apilog', 'worker', 'pino'];
const env = readStackEnv() ?? {};
const brokers = process.env['KAFKA_BROKERS'] ?? env.KAFKA_BROKERS ?? LOCAL_KAFKA_BROKERS;
const registryUrl = process.env['SCHEMA_REGISTRY_URL'] ?? env.SCHEMA_REGISTRY_URL ?? LOCAL_SCHEMA_REGISTRY_URL;
const say = (line: string) => process.stderr.write(`${line}\n`);
const load = () => loadavg().map((l) => l.toFixed(2)).join(' ');

interface Service {
  readonly child: ChildProcess;
  readonly port: number;
  next(): Promise<ServiceMessage>;
}

async function startService(framework: Framework, variant: Variant, topic: string): Promise<Service> {
  const execArgv = ['--import', 'tsx'];
  if (CPU_PROF) execArgv.push('--cpu-prof', `--cpu-prof-dir=${CPU_PROF}/${framework}-${variant}`); // one file per thread (tsx's loader has its own)
  const child = fork(new URL('./middlewareService.ts', import.meta.url).pathname, [framework, variant], {
    execArgv,
    env: { ...process.env, KAFKA_BROKERS: brokers, SCHEMA_REGISTRY_URL: registryUrl, BENCH_TOPIC: topic, NODE_ENV: 'production' },
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  const inbox: ServiceMessage[] = [];
  const waiting: ((m: ServiceMessage) => void)[] = [];
  child.on('message', (m: ServiceMessage) => {
    const w = waiting.shift();
    if (w) w(m);
    else inbox.push(m);
  });
  child.once('exit', (code) => {
    if (code !== 0) say(`service ${framework}/${variant} exited with code ${String(code)}`);
  });
  const next = () => new Promise<ServiceMessage>((resolve) => (inbox.length > 0 ? resolve(inbox.shift()!) : waiting.push(resolve)));
  const ready = await next();
  if (!('ready' in ready)) throw new Error(`service ${framework}/${variant} did not start`);
  return { child, port: ready.ready, next };
}

interface Run {
  rps: number;
  cpuPerReqUs: number;
  mainPerReqUs: number;
}

async function measure(service: Service): Promise<Run> {
  service.child.send({ cmd: 'start' });
  const result = await autocannon({ url: `http://127.0.0.1:${service.port}/v1/users/42?expand=plan`, connections: CONNECTIONS, duration: SECONDS });
  service.child.send({ cmd: 'stop' });
  const m = await service.next();
  if (!('cpuUs' in m)) throw new Error('unexpected message from the service');
  if (result.non2xx > 0 || result.errors > 0) throw new Error(`${result.non2xx} non-2xx answers, ${result.errors} errors`);
  return { rps: result.requests.total / result.duration, cpuPerReqUs: m.cpuUs / m.requests, mainPerReqUs: m.mainCpuUs / m.requests };
}


async function bench(framework: Framework, topic: string): Promise<void> {
  const services = new Map<Variant, Service>();
  for (const v of VARIANTS) services.set(v, await startService(framework, v, topic));
  const runs = new Map<Variant, Run[]>(VARIANTS.map((v) => [v, []]));
  try {
    for (let round = 0; round <= ROUNDS; round++) {
      const order = VARIANTS.map((_, i) => VARIANTS[(i + round) % VARIANTS.length]!);
      const line: string[] = [];
      for (const v of order) {
        const run = await measure(services.get(v)!);
        if (round > 0) runs.get(v)!.push(run);
        line.push(`${v} ${Math.round(run.rps)} req/s ${run.cpuPerReqUs.toFixed(0)} µs`);
      }
      say(`${framework} ${round === 0 ? 'warm-up' : `round ${round}`}: ${line.join(' · ')}   (load ${load()})`);
    }
  } finally {
    for (const s of services.values()) s.child.send({ cmd: 'exit' });
    await Promise.all([...services.values()].map((s) => new Promise((r) => (s.child.exitCode !== null ? r(null) : s.child.once('exit', r)))));
  }
  const rps = (v: Variant) => median(runs.get(v)!.map((r) => r.rps));
  const cpu = (v: Variant) => median(runs.get(v)!.map((r) => r.cpuPerReqUs));
  const mainCpu = (v: Variant) => median(runs.get(v)!.map((r) => r.mainPerReqUs));
  // Added CPU per round (same round, same conditions), then the median of those.
  const added = (v: Variant) => median(runs.get(v)!.map((r, i) => r.cpuPerReqUs - runs.get('plain')![i]!.cpuPerReqUs));
  const mainAdded = (v: Variant) => median(runs.get(v)!.map((r, i) => r.mainPerReqUs - runs.get('plain')![i]!.mainPerReqUs));
  const peer = framework === 'express' ? 'pino-http' : "Fastify's logger";
  const names: [Variant, string][] = [['plain', 'plain'], ['apilog', 'apilog (SDK+Kafka)'], ['worker', 'apilog, worker: true'], ['pino', peer], ['noop', 'middleware, no SDK']];
  say('');
  say(`${framework}: ${'variant'.padEnd(20)} ${'req/s'.padStart(8)} ${'CPU µs/req'.padStart(11)} ${'added µs'.padStart(9)} ${'main thread µs/req'.padStart(19)} ${'added µs'.padStart(9)}`);
  for (const [v, name] of names) {
    if (!runs.has(v)) continue;
    const add = (f: (v: Variant) => number) => (v === 'plain' ? '-' : f(v).toFixed(0)).padStart(9);
    say(`${framework}: ${name.padEnd(20)} ${rps(v).toFixed(0).padStart(8)} ${cpu(v).toFixed(0).padStart(11)} ${add(added)} ${mainCpu(v).toFixed(0).padStart(19)} ${add(mainAdded)}`);
  }
  const ratio = (a: number, b: number) => (a / b).toFixed(2);
  say(`${framework}: of what ${peer} adds, apilog adds ${ratio(added('apilog'), added('pino'))} (process CPU); with worker: true ${ratio(added('worker'), added('pino'))} (process CPU), ${ratio(mainAdded('worker'), mainAdded('pino'))} on the main thread (target <= 0.5); load ${load()}`);
  process.stdout.write(
    `${JSON.stringify({
      framework,
      plain_rps: Math.round(rps('plain')),
      apilog_rps: Math.round(rps('apilog')),
      pino_rps: Math.round(rps('pino')),
      apilog_added_cpu_us: Math.round(added('apilog')),
      pino_added_cpu_us: Math.round(added('pino')),
      apilog_worker_rps: Math.round(rps('worker')),
      apilog_worker_added_cpu_us: Math.round(added('worker')),
      apilog_worker_added_main_thread_us: Math.round(mainAdded('worker')),
      pino_added_main_thread_us: Math.round(mainAdded('pino')),
    })}\n`,
  );
}

async function main(): Promise<void> {
  const topic = `bench_mw_${Date.now().toString(36)}_${process.pid}`;
  await ensureTopic(createKafka({ brokers: brokers.split(','), clientId: 'bench-admin' }), { topic, partitions: 6 });
  say(`bench:middleware — ${ROUNDS} rounds (+1 warm-up) of ${SECONDS} s per variant, ${CONNECTIONS} connections, topic ${topic}, load ${load()}`);
  for (const f of FRAMEWORKS) await bench(f, topic);
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`bench:middleware: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  },
);
