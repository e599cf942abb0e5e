/**
 * Express middleware: one API-call event per request, logged when the response finishes (or the connection
 * closes early, as status 499). Install it before the routes:
 *
 *   app.use(apilogExpress({ logger: apilog, service: 'shop-api' }));
 *
 * The route is Express's matched template (`req.baseUrl + req.route.path`, e.g. `/v1/users/:id`). Express is
 * not a dependency of the SDK: this module only uses its request/response shapes.
 *
 * What it costs a request matters (it runs on every one): what can be done once per app is done once, on the
 * app's own request and response prototypes (`app.request` / `app.response`, Express's documented place to
 * extend them), not on every request object. Redefining a property of each request as an accessor, as this
 * middleware did at first, gives every request object its own hidden class and sends each later property read
 * by Express's router to the slow path; wrapping each response's write/end allocated two closures per request.
 */
import { IncomingMessage, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import { buildEvent, countRequestBytes, countResponseBytes, requestBytesOf, resolveMiddlewareOptions, responseBytesOf, type MiddlewareOptions } from './requestEvent.ts';

export type { MiddlewareOptions };

/**
 * Per request, the route Express matched and the mount path at that moment (Express restores baseUrl when an error
 * leaves the router). A WeakMap, not properties of the request: Express gives every request its app's prototype
 * (Object.setPrototypeOf), and adding a property to such an object costs V8 ~2-3 µs each (measured here, Node 20).
 */
const matches = new WeakMap<object, { readonly route: { path?: unknown } | undefined; readonly mountPath: string }>();
/** Marks a request prototype this module extended, so that a sub-app's prototype (whose chain holds its parent's) is not extended twice. */
const kExtended = Symbol('apilog.extended');

interface ExpressRequest extends IncomingMessage {
  originalUrl?: string;
  baseUrl?: string;
  route?: { path?: unknown };
  ip?: string;
}

type Next = (error?: unknown) => void;

/** Whether `proto` is an Express app's own prototype (not Node's, shared by every request of the process). */
function isAppPrototype(proto: object | null, nodes: object): proto is object {
  return proto !== null && proto !== nodes && proto !== Object.prototype;
}

function extended(proto: object): boolean {
  return (proto as { [kExtended]?: boolean })[kExtended] === true;
}

/** `route` as an accessor: Express's assignment lands in the setter, which notes the mount path at the match. */
const routeAccessor: PropertyDescriptor = {
  configurable: true,
  enumerable: true,
  get(this: ExpressRequest) {
    return matches.get(this)?.route;
  },
  set(this: ExpressRequest, value: { path?: unknown } | undefined) {
    matches.set(this, { route: value, mountPath: this.baseUrl ?? '' });
  },
};

function extendRequests(proto: object): void {
  Object.defineProperty(proto, 'route', routeAccessor);
  Object.defineProperty(proto, kExtended, { value: true });
}

export function apilogExpress(options: MiddlewareOptions): (req: ExpressRequest, res: ServerResponse, next: Next) => void {
  const o = resolveMiddlewareOptions(options);
  return (req, res, next) => {
    const method = req.method ?? 'GET';
    const url = req.originalUrl ?? req.url ?? '/';
    if (o.skip?.(method, url.split('?', 1)[0]!)) return next();
    const startedAt = Date.now();
    const t0 = performance.now();
    const requestBytes = countRequestBytes(req);

    // Outside an Express app (a bare http server, connect) the prototypes are Node's own: those are not
    // changed, and this request alone gets the accessor and the byte counting.
    const reqProto = Object.getPrototypeOf(req) as object | null;
    const onApp = isAppPrototype(reqProto, IncomingMessage.prototype);
    if (onApp) {
      if (!extended(reqProto)) extendRequests(reqProto);
    } else if (Object.getOwnPropertyDescriptor(req, 'route')?.set !== routeAccessor.set) {
      Object.defineProperty(req, 'route', routeAccessor);
    }
    const resProto = Object.getPrototypeOf(res) as object | null;
    countResponseBytes(res, isAppPrototype(resProto, ServerResponse.prototype) ? resProto : undefined);

    const finish = () => {
      // A route set while a prototype without the accessor was in place (a sub-app's) is an own property.
      const matched = req.route;
      const match = matches.get(req);
      const mountPath = match !== undefined && matched === match.route ? match.mountPath : req.baseUrl;
      const routePath = matched?.path;
      const route = typeof routePath === 'string' ? `${mountPath ?? ''}${routePath}` : undefined;
      o.log(
        buildEvent(o, {
          method, url, route, startedAt, httpVersionMajor: req.httpVersionMajor,
          status: res.writableFinished ? res.statusCode : 499,
          latencyUs: Math.round((performance.now() - t0) * 1000),
          requestBytes: requestBytesOf(req.headers, requestBytes()),
          responseBytes: responseBytesOf(res),
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
