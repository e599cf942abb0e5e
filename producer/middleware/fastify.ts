/**
 * Fastify plugin: one API-call event per request, from Fastify's hooks (onRequest, onError, onResponse).
 *
 *   await app.register(apilogFastify, { logger: apilog, service: 'shop-api' });
 *
 * The route is Fastify's route template (`request.routeOptions.url`, e.g. `/v1/users/:id`). Fastify is not a
 * dependency of the SDK: this module only uses the shapes of its instance, request and reply.
 */
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { buildEvent, countRequestBytes, countResponseBytes, requestBytesOf, resolveMiddlewareOptions, type MiddlewareOptions } from './requestEvent.ts';

export type { MiddlewareOptions };

interface FastifyRequestShape {
  method: string;
  url: string;
  ip: string;
  headers: IncomingHttpHeaders;
  raw: IncomingMessage;
  routeOptions?: { url?: string };
}
interface FastifyReplyShape {
  statusCode: number;
  raw: ServerResponse;
  getHeader(name: string): unknown;
}
interface FastifyShape {
  addHook(name: 'onRequest', hook: (req: FastifyRequestShape, reply: FastifyReplyShape) => Promise<void>): unknown;
  addHook(name: 'onError', hook: (req: FastifyRequestShape, reply: FastifyReplyShape, error: Error) => Promise<void>): unknown;
  addHook(name: 'onResponse', hook: (req: FastifyRequestShape, reply: FastifyReplyShape) => Promise<void>): unknown;
}

interface Timing {
  startedAt: number;
  t0: bigint;
  requestBytes: () => number;
  responseBytes: () => number;
  error?: Error;
}

const timings = new WeakMap<object, Timing>();

async function plugin(app: FastifyShape, options: MiddlewareOptions): Promise<void> {
  const o = resolveMiddlewareOptions(options);
  app.addHook('onRequest', async (req, reply) => {
    if (o.skip?.(req.method, req.url.split('?', 1)[0]!)) return;
    timings.set(req.raw, {
      startedAt: Date.now(),
      t0: process.hrtime.bigint(),
      requestBytes: countRequestBytes(req.raw),
      responseBytes: countResponseBytes(reply.raw),
    });
  });
  app.addHook('onError', async (req, _reply, error) => {
    const t = timings.get(req.raw);
    if (t) t.error = error;
  });
  app.addHook('onResponse', async (req, reply) => {
    const t = timings.get(req.raw);
    if (!t) return;
    timings.delete(req.raw);
    o.log(
      buildEvent(o, {
        method: req.method,
        httpVersionMajor: req.raw.httpVersionMajor,
        url: req.url,
        route: req.routeOptions?.url,
        status: reply.statusCode,
        startedAt: t.startedAt,
        latencyUs: Number((process.hrtime.bigint() - t.t0) / 1000n),
        requestBytes: requestBytesOf(req.headers, t.requestBytes()),
        responseBytes: t.responseBytes(),
        clientIp: req.ip,
        headers: req.headers,
        error: t.error ? { name: t.error.name, message: t.error.message } : undefined,
      }),
    );
  });
}

// Fastify's plugin metadata: run in the parent's encapsulation context, so the hooks apply to every route.
Object.assign(plugin, { [Symbol.for('skip-override')]: true, [Symbol.for('fastify.display-name')]: 'apilog' });

export const apilogFastify = plugin;
