/**
 * What the Express and Fastify middleware share: turning one finished HTTP request into an API-call event,
 * with secrets redacted. By default no header or query value is recorded besides the User-Agent (its own field
 * of schema version 2; `userAgent: false` leaves it out); headers and query parameters named in `captureHeaders`
 * / `captureQuery` go into `attributes` (`header.<name>`, `query.<name>`), and the redaction list replaces the
 * values of Authorization, Cookie and token-like parameters with "[REDACTED]".
 */
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { hostname } from 'node:os';
import type { LogEvent } from '../apiLogger.ts';

export const REDACTED = '[REDACTED]';

/** Headers whose values are never recorded as they are. */
export const DEFAULT_REDACT_HEADERS: readonly string[] = ['authorization', 'proxy-authorization', 'cookie', 'set-cookie', 'x-api-key', 'x-auth-token'];
/** Query parameters whose names match this are token-like: their values are never recorded as they are. */
export const DEFAULT_REDACT_QUERY = /token|secret|password|passwd|api[-_]?key|signature|sig$|auth|session|code$|credential/i;

export interface MiddlewareOptions {
  /** The SDK logger (anything with its log()). */
  readonly logger: { log(event: LogEvent): unknown };
  readonly service: string;
  /** @default os.hostname() */
  readonly instance?: string;
  /** @default process.env.NODE_ENV ?? 'dev' */
  readonly environment?: string;
  /** Cloud region or data centre of this instance (schema version 2). @default '' */
  readonly region?: string;
  /** Record the User-Agent header in the event's user_agent field (schema version 2). @default true */
  readonly userAgent?: boolean;
  /** The API name of a request. @default `${method} ${route}` */
  readonly apiName?: (method: string, route: string) => string;
  /** Header names (any case) to record in attributes as `header.<name>`. @default [] */
  readonly captureHeaders?: readonly string[];
  /** Query parameter names to record in attributes as `query.<name>`; true for all. @default [] */
  readonly captureQuery?: readonly string[] | true;
  /** Headers whose values are redacted. @default DEFAULT_REDACT_HEADERS */
  readonly redactHeaders?: readonly string[];
  /** Query parameter names whose values are redacted. @default DEFAULT_REDACT_QUERY */
  readonly redactQuery?: RegExp;
  /** Requests to leave out (health checks). @default none */
  readonly skip?: (method: string, path: string) => boolean;
}

export interface ResolvedMiddlewareOptions {
  readonly log: (event: LogEvent) => unknown;
  readonly service: string;
  readonly instance: string;
  readonly environment: string;
  readonly region: string;
  readonly userAgent: boolean;
  readonly apiName: (method: string, route: string) => string;
  readonly captureHeaders: readonly string[];
  readonly captureQuery: ReadonlySet<string> | true;
  readonly redactHeaders: ReadonlySet<string>;
  readonly redactQuery: RegExp;
  readonly skip: ((method: string, path: string) => boolean) | undefined;
}

export function resolveMiddlewareOptions(options: MiddlewareOptions): ResolvedMiddlewareOptions {
  return {
    log: (event) => options.logger.log(event),
    service: options.service,
    instance: options.instance ?? hostname(),
    environment: options.environment ?? process.env['NODE_ENV'] ?? 'dev',
    region: options.region ?? '',
    userAgent: options.userAgent ?? true,
    apiName: options.apiName ?? ((method, route) => `${method} ${route}`),
    captureHeaders: (options.captureHeaders ?? []).map((h) => h.toLowerCase()),
    captureQuery: options.captureQuery === true ? true : new Set(options.captureQuery ?? []),
    redactHeaders: new Set((options.redactHeaders ?? DEFAULT_REDACT_HEADERS).map((h) => h.toLowerCase())),
    redactQuery: options.redactQuery ?? DEFAULT_REDACT_QUERY,
    skip: options.skip,
  };
}

/** The route of requests that matched no route: one value, so unmatched paths cannot explode cardinality. */
export const UNMATCHED_ROUTE = '(unmatched)';

/** W3C traceparent: version-traceid-parentid-flags. */
const TRACEPARENT = /^[0-9a-f]{2}-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}$/;

export interface FinishedRequest {
  readonly method: string;
  /** The request's HTTP major version: 1, or 2 for HTTP/2. */
  readonly httpVersionMajor: number;
  /** The URL as received: path and query. */
  readonly url: string;
  readonly route: string | undefined;
  readonly status: number;
  readonly startedAt: number;
  readonly latencyUs: number;
  readonly requestBytes: number;
  readonly responseBytes: number;
  readonly clientIp: string | undefined;
  readonly headers: IncomingHttpHeaders;
  readonly error?: { readonly name: string; readonly message: string } | undefined;
}

function headerValue(h: string | string[] | undefined): string | undefined {
  return Array.isArray(h) ? h.join(', ') : h;
}

export function buildEvent(o: ResolvedMiddlewareOptions, r: FinishedRequest): LogEvent {
  const q = r.url.indexOf('?');
  const path = q < 0 ? r.url : r.url.slice(0, q);
  const route = r.route ?? UNMATCHED_ROUTE;
  const attributes: Record<string, string> = {};
  for (const name of o.captureHeaders) {
    const v = headerValue(r.headers[name]);
    if (v !== undefined) attributes[`header.${name}`] = o.redactHeaders.has(name) ? REDACTED : v;
  }
  if (q >= 0 && (o.captureQuery === true || o.captureQuery.size > 0)) {
    for (const [k, v] of new URLSearchParams(r.url.slice(q + 1))) {
      if (o.captureQuery !== true && !o.captureQuery.has(k)) continue;
      attributes[`query.${k}`] = o.redactQuery.test(k) ? REDACTED : v;
    }
  }
  const trace = TRACEPARENT.exec(headerValue(r.headers['traceparent']) ?? '');
  const failed = r.error !== undefined || r.status >= 500;
  return {
    ts: r.startedAt,
    api: o.apiName(r.method, route),
    method: r.method,
    route,
    path,
    status: r.status,
    latency_us: r.latencyUs,
    request_bytes: r.requestBytes,
    response_bytes: r.responseBytes,
    service: o.service,
    instance: o.instance,
    environment: o.environment,
    client_ip: r.clientIp ?? null,
    trace_id: trace?.[1] ?? null,
    span_id: trace?.[2] ?? null,
    error_class: r.error?.name ?? (failed ? `HTTP${r.status}` : null),
    error_message: r.error ? r.error.message.slice(0, 1024) : null,
    attributes,
    protocol: r.httpVersionMajor === 2 ? 'h2' : 'http',
    region: o.region,
    user_agent: o.userAgent ? (headerValue(r.headers['user-agent'])?.slice(0, 1024) ?? null) : null,
  };
}

/** Request body bytes: Content-Length when given, else what was received on the stream (countRequestBytes). */
export function requestBytesOf(headers: IncomingHttpHeaders, streamed: number): number {
  const n = Number(headers['content-length']);
  return Number.isSafeInteger(n) && n >= 0 ? n : streamed;
}

/**
 * Whether counting a request's body on the stream can matter: an HTTP/1.x request without Transfer-Encoding
 * has a body of exactly Content-Length bytes, or none (RFC 9112 §6.3), and requestBytesOf takes the header.
 * HTTP/2 requests may stream a body without a length.
 */
function mayHaveUncountedBody(req: IncomingMessage): boolean {
  return req.httpVersionMajor >= 2 || req.headers['transfer-encoding'] !== undefined;
}

/** The body byte count of a request that has none on the stream beyond Content-Length. */
const noBody = (): number => 0;

/**
 * Counts the body bytes a request receives without reading them: wraps push() of this one request object, which
 * Node's HTTP parser calls with each body chunk whoever reads it, and whenever. A 'data' listener instead would
 * switch the stream to flowing mode, and a body parser behind an async middleware would find the body gone.
 * Bytes already buffered when this is called are included; bytes already read by someone are not. A request whose
 * body Content-Length gives (or that has none) is left alone: requestBytesOf reads the header.
 */
export function countRequestBytes(req: IncomingMessage): () => number {
  if (!mayHaveUncountedBody(req)) return noBody;
  let bytes = req.readableLength;
  const push = req.push;
  req.push = function (this: IncomingMessage, chunk: unknown, encoding?: BufferEncoding) {
    if (chunk instanceof Uint8Array) bytes += chunk.byteLength;
    else if (typeof chunk === 'string') bytes += Buffer.byteLength(chunk, encoding);
    return push.call(this, chunk, encoding);
  };
  return () => bytes;
}

/**
 * The body bytes written by each response being counted (absent for the others). A WeakMap, not a property of the
 * response: Express gives every response its app's prototype (Object.setPrototypeOf), and adding a property to such
 * an object costs V8 ~2-3 µs, against ~25 ns on a response whose prototype was never changed and ~300 ns for a
 * WeakMap entry (measured here, Node 20).
 */
const responseBytes = new WeakMap<object, number>();
/** Marks the counting write, so that a response or prototype that has it (own or inherited) does not get it twice. */
const kCounting = Symbol('apilog.countingWrite');

type WriteArgs = (chunk: unknown, encoding: unknown, callback: unknown) => unknown;

/**
 * Gives `target` (a response, or a prototype of responses) write/end that add each chunk's bytes to the response's
 * count when it has one, unless its write already does. Fixed parameters, not rest arguments: Node's write/end take
 * (chunk, encoding, callback) and treat a missing one as undefined, and a rest array would be an allocation per call.
 */
function installByteCounting(target: object): void {
  const { write, end } = target as { write: WriteArgs & { [kCounting]?: true }; end: WriteArgs };
  if (write[kCounting] === true) return;
  const countingWrite = function (this: ServerResponse, chunk: unknown, encoding?: unknown, callback?: unknown) {
    const bytes = responseBytes.get(this);
    if (bytes !== undefined) responseBytes.set(this, bytes + bodyByteLength(chunk, encoding));
    return write.call(this, chunk, encoding, callback);
  };
  const countingEnd = function (this: ServerResponse, chunk?: unknown, encoding?: unknown, callback?: unknown) {
    const bytes = responseBytes.get(this);
    if (bytes !== undefined && typeof chunk !== 'function') responseBytes.set(this, bytes + bodyByteLength(chunk, encoding));
    return end.call(this, chunk, encoding, callback);
  };
  (countingWrite as { [kCounting]?: true })[kCounting] = true;
  const t = target as { write: unknown; end: unknown };
  t.write = countingWrite;
  t.end = countingEnd;
}

/**
 * Counts the body bytes a response writes from now on (Content-Length is absent for streamed and chunked
 * responses). The counting write/end go on `shared` when given, a prototype of many responses (an Express app's
 * `app.response`), once; else on this one response object.
 */
export function countResponseBytes(res: ServerResponse, shared?: object): void {
  installByteCounting(shared ?? res);
  responseBytes.set(res, 0);
}

/** The body bytes counted since countResponseBytes(res). */
export function responseBytesOf(res: ServerResponse): number {
  return responseBytes.get(res) ?? 0;
}

/** The bytes of a chunk given to a response's write or end (a string in the given encoding, or bytes). */
function bodyByteLength(chunk: unknown, encoding: unknown): number {
  if (typeof chunk === 'string') return Buffer.byteLength(chunk, typeof encoding === 'string' ? (encoding as BufferEncoding) : 'utf8');
  return chunk instanceof Uint8Array ? chunk.byteLength : 0;
}
