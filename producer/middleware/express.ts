/**
 * Express middleware: one API-call event per request, logged when the response finishes (or the connection
 * closes early, as status 499). Install it before the routes:
 *
 *   app.use(apilogExpress({ logger: apilog, service: 'shop-api' }));
 *
 * The route is Express's matched template (`req.baseUrl + req.route.path`, e.g. `/v1/users/:id`). Express is
 * not a dependency of the SDK: this module only uses its request/response shapes.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { buildEvent, countRequestBytes, countResponseBytes, requestBytesOf, resolveMiddlewareOptions, type MiddlewareOptions } from './requestEvent.ts';

export type { MiddlewareOptions };

interface ExpressRequest extends IncomingMessage {
  originalUrl?: string;
  baseUrl?: string;
  route?: { path?: unknown };
  ip?: string;
}

type Next = (error?: unknown) => void;

export function apilogExpress(options: MiddlewareOptions): (req: ExpressRequest, res: ServerResponse, next: Next) => void {
  const o = resolveMiddlewareOptions(options);
  return (req, res, next) => {
    const method = req.method ?? 'GET';
    const url = req.originalUrl ?? req.url ?? '/';
    if (o.skip?.(method, url.split('?', 1)[0]!)) return next();
    const startedAt = Date.now();
    const t0 = process.hrtime.bigint();
    const requestBytes = countRequestBytes(req);
    const responseBytes = countResponseBytes(res);
    // Express sets req.route when a route matches, and restores req.baseUrl when an error leaves the router:
    // the mount path is taken at the moment of the match.
    let matched: { path?: unknown } | undefined;
    let mountPath = '';
    Object.defineProperty(req, 'route', {
      configurable: true,
      enumerable: true,
      get: () => matched,
      set: (value: { path?: unknown } | undefined) => {
        matched = value;
        mountPath = req.baseUrl ?? '';
      },
    });
    const finish = () => {
      const routePath = matched?.path;
      const route = typeof routePath === 'string' ? `${mountPath}${routePath}` : undefined;
      o.log(
        buildEvent(o, {
          method, url, route, startedAt, httpVersionMajor: req.httpVersionMajor,
          status: res.writableFinished ? res.statusCode : 499,
          latencyUs: Number((process.hrtime.bigint() - t0) / 1000n),
          requestBytes: requestBytesOf(req.headers, requestBytes()),
          responseBytes: responseBytes(),
          clientIp: req.ip ?? req.socket.remoteAddress,
          headers: req.headers,
        }),
      );
    };
    // 'close' follows 'finish' on every response (and comes alone when the connection closes first): one listener.
    res.on('close', finish);
    next();
  };
}
