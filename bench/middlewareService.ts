/**
 * The service process of `npm run bench:middleware`: one Express 5 or Fastify 5 app with one variant of request
 * logging, on an ephemeral loopback port. Driven over IPC by bench/middleware.ts:
 *   → { cmd: 'start' }   resets the CPU clock and the request count
 *   → { cmd: 'stop' }    waits until the SDK has every event of the window acknowledged by Kafka (variant apilog),
 *                         then answers { cpuUs, requests } for the window
 *   → { cmd: 'exit' }
 * argv: <express|fastify> <plain|apilog|worker|pino|noop> ; env: KAFKA_BROKERS, SCHEMA_REGISTRY_URL, BENCH_TOPIC.
 */
import { createWriteStream } from 'node:fs';
import type * as Sdk from '../producer/index.ts';
import type * as ExpressMiddleware from '../producer/middleware/express.ts';
import type * as FastifyMiddleware from '../producer/middleware/fastify.ts';
import { mainThreadCpuUs } from './measure.ts';

type ApiLogger = Sdk.ApiLogger;
/**
 * The SDK as the package ships it: the JavaScript tsc built into dist/ (`prebench:middleware`), run by Node as it is,
 * like pino-http and Fastify from node_modules. Loaded from the TypeScript source, tsx's transform would wrap every
 * function expression in a naming helper (esbuild's keepNames), a call per closure made, which no service pays.
 */
const built = (module: string) => new URL(`../dist/producer/${module}`, import.meta.url).href;
const { createApiLogger } = (await import(built('index.js'))) as typeof Sdk;
const { apilogExpress } = (await import(built('middleware/express.js'))) as typeof ExpressMiddleware;
const { apilogFastify } = (await import(built('middleware/fastify.js'))) as typeof FastifyMiddleware;

export type Framework = 'express' | 'fastify';
/**
 * `worker`: apilog with the SDK sending from its worker thread (`worker: true`).
 * `noop`: apilog's middleware with a logger whose log() does nothing (the middleware's own cost, no SDK).
 */
export type Variant = 'plain' | 'apilog' | 'worker' | 'pino' | 'noop';
/** cpuUs: the whole process (every thread); mainCpuUs: the thread that serves the requests alone (Linux; NaN elsewhere). */
export type ServiceMessage = { ready: number } | { cpuUs: number; mainCpuUs: number; requests: number };

const framework = process.argv[2] as Framework;
const variant = process.argv[3] as Variant;
/** The variants with the real SDK (sending from the service's thread, or from its worker). */
const withSdk = variant === 'apilog' || variant === 'worker';
const send = (m: ServiceMessage) => process.send!(m);

let requests = 0;
const user = (id: string) => {
  requests++;
  return { id, name: 'Ada Lovelace', plan: 'pro', active: true, created: '2024-01-02T03:04:05Z' };
};

async function sdk(): Promise<ApiLogger> {
  return createApiLogger({ brokers: process.env['KAFKA_BROKERS']!.split(','), registry: process.env['SCHEMA_REGISTRY_URL']!, topic: process.env['BENCH_TOPIC']!, worker: variant === 'worker' });
}

async function expressApp(): Promise<{ port: number; logger?: ApiLogger }> {
  const { default: express } = await import('express');
  const app = express();
  let logger: ApiLogger | undefined;
  if (withSdk) {
    logger = await sdk();
    app.use(apilogExpress({ logger, service: 'bench-api' }));
  } else if (variant === 'noop') {
    app.use(apilogExpress({ logger: { log: () => true }, service: 'bench-api' }));
  } else if (variant === 'pino') {
    const { pinoHttp } = await import('pino-http');
    const { default: pino } = await import('pino');
    app.use(pinoHttp({ logger: pino(pino.destination({ dest: '/dev/null', sync: false })) }));
  }
  app.get('/v1/users/:id', (req, res) => {
    res.json(user(req.params.id));
  });
  const server = app.listen(0, '127.0.0.1');
  await new Promise<void>((r) => server.once('listening', () => r()));
  return { port: (server.address() as { port: number }).port, ...(logger ? { logger } : {}) };
}

async function fastifyApp(): Promise<{ port: number; logger?: ApiLogger }> {
  const { default: Fastify } = await import('fastify');
  // Fastify's own logger is pino: request and response lines, written to /dev/null.
  const app = Fastify(variant === 'pino' ? { logger: { level: 'info', stream: createWriteStream('/dev/null') } } : { logger: false });
  let logger: ApiLogger | undefined;
  if (withSdk) {
    logger = await sdk();
    await app.register(apilogFastify, { logger, service: 'bench-api' });
  } else if (variant === 'noop') {
    await app.register(apilogFastify, { logger: { log: () => true }, service: 'bench-api' });
  }
  app.get<{ Params: { id: string } }>('/v1/users/:id', async (req) => user(req.params.id));
  await app.listen({ port: 0, host: '127.0.0.1' });
  return { port: (app.server.address() as { port: number }).port, ...(logger ? { logger } : {}) };
}

async function main(): Promise<void> {
  const { port, logger } = framework === 'express' ? await expressApp() : await fastifyApp();
  let cpu0 = process.cpuUsage();
  let main0 = mainThreadCpuUs();
  let requests0 = 0;
  process.on('message', (m: { cmd: string }) => {
    if (m.cmd === 'start') {
      cpu0 = process.cpuUsage();
      main0 = mainThreadCpuUs();
      requests0 = requests;
    } else if (m.cmd === 'stop') {
      void (async () => {
        if (logger) await logger.flush();
        const cpu = process.cpuUsage(cpu0);
        send({ cpuUs: cpu.user + cpu.system, mainCpuUs: mainThreadCpuUs() - main0, requests: requests - requests0 });
      })();
    } else if (m.cmd === 'exit') {
      void (async () => {
        if (logger) await logger.close();
        process.exit(0);
      })();
    }
  });
  send({ ready: port });
}

main().catch((error: unknown) => {
  process.stderr.write(`bench:middleware service ${framework}/${variant}: ${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});
