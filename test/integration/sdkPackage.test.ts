/**
 * The SDK as a service team gets it (integration): `npm pack` of producer/ (its prepack builds the JavaScript and
 * the .d.ts), the tarball installed into a fresh project in a temporary directory (from npm's cache, else the
 * registry npm already uses), and there a plain JavaScript service and a strict TypeScript one (type-checked
 * against the shipped types, sending from the SDK's worker thread) serve HTTP requests through the Express middleware. Their events, read by the
 * consumer, land in ClickHouse with the fields of schema version 2. The install holds none of the consumer's
 * packages (the embedded engine, the ClickHouse client) nor the web frameworks the SDK's middleware serve.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { ClickHouseServerSink } from '../../clickhouse/serverSink.ts';
import { ensureTopic } from '../../producer/topic.ts';
import { PROJECT_ROOT } from '../../stack/endpoints.ts';
import { consumeInto, kafkaClient, stack, uniqueName } from './pipeline.ts';

const SDK_DIR = join(PROJECT_ROOT, 'producer');
const TSC = join(PROJECT_ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
const ROOT_MANIFEST = JSON.parse(readFileSync(join(PROJECT_ROOT, 'package.json'), 'utf8')) as { devDependencies: Record<string, string> };

/** The environment without the npm_* variables of an enclosing `npm test`: the inner npm must see only its own project. */
function cleanEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !/^npm_/i.test(k)) env[k] = v;
  return env;
}

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command in `cwd` with that environment to its end (killed after `timeoutMs`). */
function run(command: readonly string[], cwd: string, timeoutMs = 120_000): Promise<Run> {
  return new Promise((resolve) => {
    execFile(command[0]!, command.slice(1), { cwd, env: cleanEnv(), timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === 'number' ? error.code : -1;
      resolve({ code, stdout, stderr: error !== null && code === -1 ? `${stderr}\n${error.message}` : stderr });
    });
  });
}

/** run(), failing the test with the command's output unless it exits 0. */
async function sh(command: readonly string[], cwd: string, timeoutMs = 120_000): Promise<Run> {
  const result = await run(command, cwd, timeoutMs);
  if (result.code !== 0) throw new Error(`${command.join(' ')} exited ${result.code}\n${result.stdout}\n${result.stderr}`);
  return result;
}

const JS_SERVICE = `
import { once } from 'node:events';
import express from 'express';
import { ConfigError, createApiLogger } from 'apilog';
import { apilogExpress } from 'apilog/express';

const [brokers, registry, topic, count] = process.argv.slice(2);
// zstd-napi is an optional peer: not installed here, so zstd is refused at start-up, naming the package.
const zstd = await createApiLogger({ brokers: [brokers], registry, topic, compression: 'zstd' })
  .then(() => 'accepted', (error) => (error instanceof ConfigError ? error.message : 'not a ConfigError: ' + error));

const apilog = await createApiLogger({ brokers: [brokers], registry, topic });
const app = express();
app.use(apilogExpress({ logger: apilog, service: 'js-service', environment: 'test', region: 'eu-west-1' }));
app.get('/v1/items/:id', (req, res) => res.json({ id: req.params.id }));
const server = app.listen(0, '127.0.0.1');
await once(server, 'listening');
for (let i = 0; i < Number(count); i++) {
  const res = await fetch('http://127.0.0.1:' + server.address().port + '/v1/items/' + i, { headers: { 'user-agent': 'js-client/1' } });
  await res.text();
}
server.close();
const metrics = await apilog.close();
console.log(JSON.stringify({ sent: metrics.sent, zstd }));
`;

const TS_SERVICE = `
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import express, { type Request, type Response } from 'express';
import { createApiLogger, type ApiLoggerOptions, type LogEvent, type MetricsSnapshot } from 'apilog';
import { apilogExpress, type MiddlewareOptions } from 'apilog/express';
import { apilogFastify } from 'apilog/fastify'; // its typings must not need fastify, which this project lacks

const [brokers, registry, topic, count] = process.argv.slice(2) as [string, string, string, string];
void apilogFastify;
// Sent from the SDK's worker thread: its script must be in the package, beside the compiled module that starts it.
const options: ApiLoggerOptions = { brokers: [brokers], registry, topic, schemaVersion: 2, compression: 'gzip', worker: true };
const apilog = await createApiLogger(options);
const middleware: MiddlewareOptions = { logger: apilog, service: 'ts-service', environment: 'test', region: 'us-east-1' };
const app = express();
app.use(apilogExpress(middleware));
app.post('/v1/orders', (_req: Request, res: Response) => {
  res.status(201).json({ ok: true });
});
const server = app.listen(0, '127.0.0.1');
await once(server, 'listening');
const { port } = server.address() as AddressInfo;
for (let i = 0; i < Number(count); i++) {
  const res = await fetch(\`http://127.0.0.1:\${port}/v1/orders\`, { method: 'POST', body: '{}', headers: { 'content-type': 'application/json', 'user-agent': 'ts-client/1' } });
  await res.text();
}
server.close();
// A call the service makes itself, logged directly, with version 2's fields.
const outbound: LogEvent = {
  api: 'payments.charge', method: 'POST', route: '/v1/charges', path: '/v1/charges', status: 201, latency_us: 1830,
  request_bytes: 312, response_bytes: 95, service: 'ts-service', instance: 'ts-0', environment: 'test',
  protocol: 'h2', retry_attempt: 1, upstream_latency_us: 1200,
};
const accepted: boolean | Promise<boolean> = apilog.log(outbound);
const metrics: MetricsSnapshot = await apilog.close();
console.log(JSON.stringify({ sent: metrics.sent, accepted: await accepted }));
`;

/** Mistakes the shipped types must catch (each line number is asserted below). */
const TS_MISTAKES = `import { createApiLogger } from 'apilog';
import { apilogExpress } from 'apilog/express';
const apilog = await createApiLogger({ brokers: ['b:9092'], registry: 'http://r', topic: 't', schemaVersion: 3 });
apilog.log({ api: 'a', method: 'GET', route: '/', path: '/', status: '200', latency_us: 1, request_bytes: 0, response_bytes: 0, service: 's', instance: 'i', environment: 'e' });
apilogExpress({ logger: apilog });
`;

const JS_REQUESTS = 12;
const TS_REQUESTS = 7;

describe('the SDK package, packed and installed into a fresh project (integration)', () => {
  let work: string;
  let app: string;
  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'apilog-sdk-'));
    const packed = await sh(['npm', 'pack', '--json', '--pack-destination', work], SDK_DIR);
    const [{ filename }] = JSON.parse(packed.stdout.slice(packed.stdout.indexOf('['))) as [{ filename: string }];
    app = join(work, 'service');
    mkdirSync(app);
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'sdk-user', private: true, type: 'module' }));
    const dev = ROOT_MANIFEST.devDependencies;
    await sh(
      ['npm', 'install', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error', join(work, filename),
        `express@${dev['express']}`, `@types/express@${dev['@types/express']}`, `@types/node@${dev['@types/node']}`],
      app,
    );
  }, 240_000);
  afterAll(() => {
    if (work) rmSync(work, { recursive: true, force: true });
  });

  test('the install holds what runs: built JavaScript and .d.ts, no engine, no ClickHouse client, no framework of its own', () => {
    const installed = join(app, 'node_modules', 'apilog');
    expect(readdirSync(installed).sort()).toEqual(['CHANGELOG.md', 'LICENSE', 'README.md', 'dist', 'package.json']);
    const files = readdirSync(join(installed, 'dist'), { recursive: true, withFileTypes: true }).filter((f) => f.isFile()).map((f) => f.name);
    expect(files.filter((f) => !/\.(js|d\.ts|avsc)$/.test(f))).toEqual([]);
    expect(files).toContain('index.d.ts');
    const modules = join(app, 'node_modules');
    for (const absent of ['chdb', '@chdb', '@clickhouse', 'fastify', 'zstd-napi', 'tsx', 'commander']) expect(existsSync(join(modules, absent)), absent).toBe(false);
    // express is there because this project installed it for its service, not through apilog.
    const manifest = JSON.parse(readFileSync(join(installed, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
    expect(Object.keys(manifest.dependencies)).not.toContain('express');
  });

  test('CommonJS services require() it (Node >= 20.19 loads ES modules with require)', async () => {
    const script = "process.stdout.write(typeof require('apilog').createApiLogger + ' ' + typeof require('apilog/express').apilogExpress)";
    expect((await sh([process.execPath, '-e', script], app)).stdout).toBe('function function');
  });

  test('a plain JavaScript and a strict TypeScript service log requests through the Express middleware into ClickHouse', async () => {
    const s = stack();
    const topic = uniqueName('it-sdk-pkg');
    const table = uniqueName('sdk_pkg');
    await ensureTopic(kafkaClient(), { topic, partitions: 3 });
    const args = [s.brokers, s.registry, topic];

    writeFileSync(join(app, 'js-service.mjs'), JS_SERVICE);
    const js = await sh([process.execPath, 'js-service.mjs', ...args, String(JS_REQUESTS)], app);
    const jsOut = JSON.parse(js.stdout) as { sent: number; zstd: string };
    expect(jsOut.sent).toBe(JS_REQUESTS);
    expect(jsOut.zstd).toMatch(/compression zstd needs the package zstd-napi/);

    // One tsc run over the service and a file of mistakes: the mistakes, and only they, are errors; the service is emitted.
    writeFileSync(join(app, 'service.ts'), TS_SERVICE);
    writeFileSync(join(app, 'mistakes.ts'), TS_MISTAKES);
    writeFileSync(
      join(app, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: { strict: true, target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', skipLibCheck: false, outDir: 'build', types: ['node'] },
        files: ['service.ts', 'mistakes.ts'],
      }),
    );
    const tsc = await run([process.execPath, TSC, '-p', '.'], app);
    expect(tsc.code).not.toBe(0);
    const errors = tsc.stdout.split('\n').filter((line) => /error TS/.test(line));
    expect(errors.map((e) => e.replace(/\(\d+,\d+\).*?(TS\d+).*/, ' $1'))).toEqual(['mistakes.ts TS2322', 'mistakes.ts TS2322', 'mistakes.ts TS2345']);
    expect(errors.map((e) => /\((\d+),/.exec(e)?.[1])).toEqual(['3', '4', '5']);
    const ts = await sh([process.execPath, join('build', 'service.js'), ...args, String(TS_REQUESTS)], app);
    expect(JSON.parse(ts.stdout)).toEqual({ sent: TS_REQUESTS + 1, accepted: true });

    const expected = JS_REQUESTS + TS_REQUESTS + 1;
    const sink = new ClickHouseServerSink({ url: s.clickhouse });
    try {
      expect(await consumeInto(sink, table, topic, expected)).toBe(expected);
      const rows = await sink.query<Record<string, string | number | null>>(
        `SELECT service, api, route, status, protocol, region, retry_attempt, upstream_latency_us, user_agent, count() AS n
         FROM ${table} GROUP BY service, api, route, status, protocol, region, retry_attempt, upstream_latency_us, user_agent ORDER BY service, api`,
      );
      expect(rows.map((r) => ({ ...r, status: Number(r['status']), retry_attempt: Number(r['retry_attempt']), n: Number(r['n']),
        upstream_latency_us: r['upstream_latency_us'] === null ? null : Number(r['upstream_latency_us']) }))).toEqual([
        { service: 'js-service', api: 'GET /v1/items/:id', route: '/v1/items/:id', status: 200, protocol: 'http', region: 'eu-west-1',
          retry_attempt: 0, upstream_latency_us: null, user_agent: 'js-client/1', n: JS_REQUESTS },
        { service: 'ts-service', api: 'POST /v1/orders', route: '/v1/orders', status: 201, protocol: 'http', region: 'us-east-1',
          retry_attempt: 0, upstream_latency_us: null, user_agent: 'ts-client/1', n: TS_REQUESTS },
        { service: 'ts-service', api: 'payments.charge', route: '/v1/charges', status: 201, protocol: 'h2', region: '',
          retry_attempt: 1, upstream_latency_us: 1200, user_agent: null, n: 1 },
      ]);
    } finally {
      await sink.close();
    }
  });
});
