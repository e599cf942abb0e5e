/**
 * Express and Fastify middleware over real HTTP on loopback. The SDK logger is replaced by a recorder of what
 * log() receives (the middleware's own interface), and every event is checked against the SDK's validator.
 */
import type { AddressInfo } from 'node:net';
import { createServer, IncomingMessage, request, ServerResponse, type Server } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import express from 'express';
import Fastify from 'fastify';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { LogEvent } from '../../producer/apiLogger.ts';
import { apilogExpress } from '../../producer/middleware/express.ts';
import { apilogFastify } from '../../producer/middleware/fastify.ts';
import { REDACTED, UNMATCHED_ROUTE } from '../../producer/middleware/requestEvent.ts';
import { EventValidator } from '../../producer/validate.ts';

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const PARENT = '00f067aa0ba902b7';

function recorder() {
  const events: LogEvent[] = [];
  return { events, logger: { log: (e: LogEvent) => events.push(e) } };
}

const validator = new EventValidator();
const options = { service: 'shop-api', instance: 'test-0', environment: 'test', region: 'eu-west-1', captureHeaders: ['authorization', 'cookie', 'user-agent'], captureQuery: true } as const;

async function until(check: () => boolean): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!check() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
}

/**
 * POSTs a JSON body in pieces, a few milliseconds apart: with Content-Length, or chunked (no length: the bytes
 * can only be counted as they arrive). Resolves with the reply's status and text; rejects after 3 s.
 */
function postInPieces(url: string, pieces: readonly string[], framing: 'content-length' | 'chunked'): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (framing === 'content-length') headers['content-length'] = String(Buffer.byteLength(pieces.join('')));
    const req = request(url, { method: 'POST', headers, timeout: 3000 }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
    });
    req.on('timeout', () => req.destroy(new Error(`no reply within 3 s from ${url}`)));
    req.on('error', reject);
    void (async () => {
      for (const piece of pieces) {
        req.write(piece);
        await sleep(5);
      }
      req.end();
    })();
  });
}

const PIECES = ['{"items":[', '"a","b","c",'.repeat(40), '"\u00e9t\u00e9 ✓"]}'];
const BODY = PIECES.join('');

/** A JSON body with Content-Length and chunked, to a route that echoes the parsed body. */
function bodyScenarios(url: () => string, events: () => LogEvent[]) {
  for (const framing of ['content-length', 'chunked'] as const) {
    test(`${framing}: the body parser gets the whole body and request_bytes counts it`, async () => {
      const before = events().length;
      const reply = await postInPieces(url(), PIECES, framing);
      expect(reply.status).toBe(200);
      expect(JSON.parse(reply.text)).toEqual(JSON.parse(BODY));
      await until(() => events().length > before);
      expect(events().at(-1)!.request_bytes).toBe(Buffer.byteLength(BODY));
    });
  }
}

/** The same requests against both frameworks. */
function scenarios(base: () => string, events: () => LogEvent[]) {
  test('a matched route: template, status, sizes, latency, client, trace; secrets redacted', async () => {
    const body = JSON.stringify({ amount: 42 });
    const res = await fetch(`${base()}/v1/users/42?access_token=s3cr3t&page=2`, {
      method: 'POST',
      body,
      headers: { 'content-type': 'application/json', authorization: 'Bearer s3cr3t', cookie: 'sid=s3cr3t', 'user-agent': 'curl/8', traceparent: `00-${TRACE}-${PARENT}-01` },
    });
    const text = await res.text();
    await until(() => events().length >= 1);
    const e = events().at(-1)!;
    expect(validator.validate(e)).toBeGreaterThan(0);
    expect(e).toMatchObject({
      api: 'POST /v1/users/:id', method: 'POST', route: '/v1/users/:id', path: '/v1/users/42', status: 201,
      request_bytes: Buffer.byteLength(body), response_bytes: Buffer.byteLength(text),
      service: 'shop-api', instance: 'test-0', environment: 'test', trace_id: TRACE, span_id: PARENT, error_class: null,
      protocol: 'http', region: 'eu-west-1', user_agent: 'curl/8',
    });
    expect(e.client_ip).toMatch(/127\.0\.0\.1/);
    expect(e.latency_us).toBeGreaterThan(0);
    expect(e.attributes).toEqual({
      'header.authorization': REDACTED, 'header.cookie': REDACTED, 'header.user-agent': 'curl/8',
      'query.access_token': REDACTED, 'query.page': '2',
    });
    expect(JSON.stringify(e)).not.toContain('s3cr3t');
  });

  test('an unmatched path is logged under one route, not its path', async () => {
    const res = await fetch(`${base()}/nothing/here/123`);
    await res.arrayBuffer();
    await until(() => events().some((e) => e.status === 404));
    const e = events().find((x) => x.status === 404)!;
    expect(e.route).toBe(UNMATCHED_ROUTE);
    expect(e.path).toBe('/nothing/here/123');
  });

  test('a failing handler is logged as a 500 with an error class', async () => {
    const res = await fetch(`${base()}/v1/boom`);
    await res.arrayBuffer();
    await until(() => events().some((e) => e.status === 500));
    const e = events().find((x) => x.status === 500)!;
    expect(e.route).toBe('/v1/boom');
    expect(e.error_class).not.toBeNull();
  });
}

describe('Express middleware (real HTTP)', () => {
  const { events, logger } = recorder();
  let server: Server;
  let base = '';
  beforeAll(async () => {
    const app = express();
    app.use(apilogExpress({ logger, ...options }));
    const router = express.Router();
    router.post('/users/:id', express.json(), (_req, res) => void res.status(201).json({ ok: true, id: 42 }));
    router.get('/boom', () => {
      throw new Error('boom');
    });
    app.use('/v1', router);
    server = app.listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));
  scenarios(() => base, () => events);
});

describe('Express middleware on an app with a mounted sub-app, and on a bare Node server (real HTTP)', () => {
  const { events, logger } = recorder();
  const bare = recorder();
  let server: Server;
  let bareServer: Server;
  let base = '';
  beforeAll(async () => {
    const app = express();
    app.use(apilogExpress({ logger, ...options }));
    const admin = express();
    admin.get('/things/:id', (_req, res) => void res.type('text/plain').send('thing'));
    admin.get('/streamed', (_req, res) => {
      res.write('ab');
      res.write(Buffer.from('cde'));
      res.end('\u00e9');
    });
    app.use('/admin', admin);
    server = app.listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    // Not Express: the request and response keep Node's own prototypes, which the middleware must not change.
    const middleware = apilogExpress({ logger: bare.logger, ...options });
    bareServer = createServer((req, res) => middleware(req, res, () => res.end('plain node')));
    bareServer.listen(0, '127.0.0.1');
    await new Promise((r) => bareServer.once('listening', r));
  });
  afterAll(async () => {
    await new Promise<void>((r) => server.close(() => r()));
    await new Promise<void>((r) => bareServer.close(() => r()));
  });

  test("a sub-app's route carries its mount path; streamed bytes are counted once", async () => {
    expect(await (await fetch(`${base}/admin/things/7`)).text()).toBe('thing');
    expect(await (await fetch(`${base}/admin/streamed`)).text()).toBe('abcde\u00e9');
    await until(() => events.length >= 2);
    expect(events.map((e) => [e.route, e.response_bytes])).toEqual([
      ['/admin/things/:id', 5],
      ['/admin/streamed', 7],
    ]);
  });

  test("on a bare Node server: logged, counted, and Node's prototypes left as they were", async () => {
    const port = (bareServer.address() as AddressInfo).port;
    expect(await (await fetch(`http://127.0.0.1:${port}/x?y=1`)).text()).toBe('plain node');
    await until(() => bare.events.length >= 1);
    expect(bare.events[0]).toMatchObject({ route: UNMATCHED_ROUTE, path: '/x', status: 200, response_bytes: 10 });
    expect(Object.getOwnPropertyDescriptor(IncomingMessage.prototype, 'route')).toBeUndefined();
    expect([ServerResponse.prototype.write.name, ServerResponse.prototype.end.name]).toEqual(['write', 'end']);
  });
});

describe('Express middleware, then an async middleware, then the body parser (real HTTP)', () => {
  const { events, logger } = recorder();
  const late = recorder();
  let server: Server;
  let base = '';
  beforeAll(async () => {
    const app = express();
    app.use(apilogExpress({ logger, ...options }));
    // Body chunks arrive while this awaits: counting them must not read them away from express.json().
    app.use(async (_req, _res, next) => {
      await sleep(20);
      next();
    });
    app.post('/echo', express.json(), (req, res) => void res.json(req.body ?? null));
    // Mounted after the wait: by then the body is already buffered in the request (received, not yet read).
    app.post('/late', apilogExpress({ logger: late.logger, ...options }), express.json(), (req, res) => void res.json(req.body ?? null));
    server = app.listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  bodyScenarios(() => `${base}/echo`, () => events);

  test('chunked, installed after the wait: the bytes already buffered are counted', async () => {
    const reply = await postInPieces(`${base}/late`, [BODY], 'chunked');
    expect(JSON.parse(reply.text)).toEqual(JSON.parse(BODY));
    await until(() => late.events.length > 0);
    expect(late.events[0]!.request_bytes).toBe(Buffer.byteLength(BODY));
  });
});

describe('Fastify plugin (real HTTP)', () => {
  const { events, logger } = recorder();
  const app = Fastify();
  let base = '';
  beforeAll(async () => {
    await app.register(apilogFastify, { logger, ...options });
    app.post('/v1/users/:id', async (_req, reply) => reply.code(201).send({ ok: true, id: 42 }));
    app.post('/echo', async (req) => req.body);
    app.get('/v1/boom', async () => {
      throw new Error('boom');
    });
    base = await app.listen({ port: 0, host: '127.0.0.1' });
  });
  afterAll(() => app.close());
  scenarios(() => base, () => events);

  bodyScenarios(() => `${base}/echo`, () => events);

  test('the error thrown by the handler is recorded', async () => {
    const e = events.find((x) => x.status === 500)!;
    expect(e.error_class).toBe('Error');
    expect(e.error_message).toBe('boom');
  });
});
