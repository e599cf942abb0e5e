/**
 * Fastify plugin: one API-call event per request, from Fastify's hooks (onRequest, onError, onResponse).
 *
 *   await app.register(apilogFastify, { logger: apilog, service: 'shop-api' });
 *
 * The route is Fastify's route template (`request.routeOptions.url`, e.g. `/v1/users/:id`). Fastify is not a
 * dependency of the SDK: this module only uses the shapes of its instance, request and reply.
 *
 * Per request it costs a few object allocations: the hooks take Fastify's `done` callback rather than returning
 * promises (an async hook is a promise and a microtask per hook per request), and what a request carries from
 * onRequest to onResponse sits in a request decoration (Fastify's way to keep request objects one shape), not in
 * a WeakMap.
 */
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import { buildEvent, countRequestBytes, countResponseBytes, requestBytesOf, resolveMiddlewareOptions, responseBytesOf, type MiddlewareOptions } from './requestEvent.ts';

export type { MiddlewareOptions };

/** The request decoration: what onResponse needs from onRequest. */
const kTiming = Symbol('apilog.timing');

interface Timing {
  readonly startedAt: number;
  readonly t0: number;
  readonly requestBytes: () => number;
  error: Error | undefined;
}

interface FastifyRequestShape {
  method: string;
  url: string;
  ip: string;
  headers: IncomingHttpHeaders;
  raw: IncomingMessage;
  routeOptions?: { url?: string };
  [kTiming]?: Timing | null;
}
interface FastifyReplyShape {
  statusCode: number;
  raw: ServerResponse;
}
type Done = () => void;
interface FastifyShape {
  decorateRequest(name: symbol, value: null): unknown;
  hasRequestDecorator(name: symbol): boolean;
  addHook(name: 'onRequest', hook: (req: FastifyRequestShape, reply: FastifyReplyShape, done: Done) => void): unknown;
  addHook(name: 'onError', hook: (req: FastifyRequestShape, reply: FastifyReplyShape, error: Error, done: Done) => void): unknown;
  addHook(name: 'onResponse', hook: (req: FastifyRequestShape, reply: FastifyReplyShape, done: Done) => void): unknown;
}

async function plugin(app: FastifyShape, options: MiddlewareOptions): Promise<void> {
  const o = resolveMiddlewareOptions(options);
  if (!app.hasRequestDecorator(kTiming)) app.decorateRequest(kTiming, null);
  app.addHook('onRequest', (req, reply, done) => {
    if (o.skip === undefined || !o.skip(req.method, req.url.split('?', 1)[0]!)) {
      req[kTiming] = {
        startedAt: Date.now(),
        t0: performance.now(),
        requestBytes: countRequestBytes(req.raw),
        error: undefined,
      };
      countResponseBytes(reply.raw);
    }
    done();
  });
  app.addHook('onError', (req, _reply, error, done) => {
    const t = req[kTiming];
    if (t) t.error = error;
    done();
  });
  app.addHook('onResponse', (req, reply, done) => {
    const t = req[kTiming];
    if (t) {
      req[kTiming] = null;
      o.log(
        buildEvent(o, {
          method: req.method,
          httpVersionMajor: req.raw.httpVersionMajor,
          url: req.url,
          route: req.routeOptions?.url,
          status: reply.statusCode,
          startedAt: t.startedAt,
          latencyUs: Math.round((performance.now() - t.t0) * 1000),
          requestBytes: requestBytesOf(req.headers, t.requestBytes()),
          responseBytes: responseBytesOf(reply.raw),
          clientIp: req.ip,
          headers: req.headers,
          error: t.error ? { name: t.error.name, message: t.error.message } : undefined,
        }),
      );
    }
    done();
  });
}

// Fastify's plugin metadata: run in the parent's encapsulation context, so the hooks apply to every route.
Object.assign(plugin, { [Symbol.for('skip-override')]: true, [Symbol.for('fastify.display-name')]: 'apilog' });

export const apilogFastify = plugin;
