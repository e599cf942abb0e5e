/**
 * HTTP ingest for services in other languages: POST a JSON batch of API-call events, get a per-event answer.
 *
 *   POST /v1/events   body: [event, ...] or {"events": [event, ...]}   (Content-Type: application/json)
 *     200 {"accepted": n, "rejected": k, "errors": [{"index": i, "reason": "...", "field": "..."}]}
 *     with ?wait=ack the answer comes once the accepted events are acknowledged by Kafka (or 504 after waitMs).
 *     400 not JSON / not a batch · 401 bad or missing bearer token · 413 body or batch too large ·
 *     415 not JSON content · 503 queue full (the events marked "dropped" in errors may be sent again).
 *   GET /healthz      200 "ok"
 *   GET /metrics      the SDK's metrics in the Prometheus text format
 *
 * Each event goes through the SDK's log(): the same validation against the Avro schema's fields, the same
 * queue, batching, partitioning and retries as in-process callers.
 */
import { timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Registry } from 'prom-client';
import { describeError } from '../runtime/errors.ts';
import type { Logger } from '../runtime/log.ts';
import type { ApiLogger, LogEvent } from './apiLogger.ts';
import type { RejectReason } from './validate.ts';

export interface IngestOptions {
  readonly logger: ApiLogger;
  /** @default 8088 */
  readonly port?: number;
  /** @default '127.0.0.1' */
  readonly host?: string;
  /** Required `Authorization: Bearer <token>` when set. @default none */
  readonly token?: string;
  /** Largest request body. @default 5242880 (5 MiB) */
  readonly maxBodyBytes?: number;
  /** Most events in one request. @default 10000 */
  readonly maxEvents?: number;
  /** ?wait=ack waits at most this long. @default 30000 */
  readonly waitMs?: number;
  readonly log?: Logger;
}

export interface EventError {
  readonly index: number;
  readonly reason: RejectReason | 'dropped';
  readonly field?: string;
}

export interface IngestServer {
  readonly server: Server;
  readonly url: string;
  close(): Promise<void>;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  res.writeHead(status, {
    'content-type': typeof body === 'string' ? 'text/plain; charset=utf-8' : 'application/json',
    'content-length': Buffer.byteLength(text),
    ...headers,
  });
  res.end(text);
}

async function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) throw new HttpError(413, `body of ${declared} bytes is over the ${limit}-byte limit`);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) throw new HttpError(413, `body is over the ${limit}-byte limit`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, size);
}

function authorized(header: string | undefined, token: Buffer): boolean {
  if (header === undefined || !header.startsWith('Bearer ')) return false;
  const given = Buffer.from(header.slice(7).trim());
  return given.length === token.length && timingSafeEqual(given, token);
}

export async function startIngestServer(options: IngestOptions): Promise<IngestServer> {
  const { logger } = options;
  const maxBodyBytes = options.maxBodyBytes ?? 5 * 1024 * 1024;
  const maxEvents = options.maxEvents ?? 10_000;
  const waitMs = options.waitMs ?? 30_000;
  const token = options.token === undefined ? undefined : Buffer.from(options.token);
  const registry = new Registry();
  logger.prometheus.registerPrometheus(registry);

  async function ingest(req: IncomingMessage, res: ServerResponse, query: URLSearchParams): Promise<void> {
    if (token && !authorized(req.headers.authorization, token)) {
      throw new HttpError(401, 'missing or wrong bearer token', { 'www-authenticate': 'Bearer realm="apilog"' });
    }
    const type = req.headers['content-type'] ?? '';
    if (!/^application\/json\b/i.test(type)) throw new HttpError(415, 'Content-Type must be application/json');
    const body = await readBody(req, maxBodyBytes);
    let parsed: unknown;
    try {
      parsed = JSON.parse(body.toString('utf8'));
    } catch (error) {
      throw new HttpError(400, `body is not JSON: ${describeError(error)}`);
    }
    const events = Array.isArray(parsed) ? parsed : (parsed as { events?: unknown } | null)?.events;
    if (!Array.isArray(events)) throw new HttpError(400, 'body must be a JSON array of events or {"events": [...]}');
    if (events.length > maxEvents) throw new HttpError(413, `${events.length} events is over the ${maxEvents}-event limit`);

    const errors: EventError[] = [];
    let accepted = 0;
    let dropped = 0;
    for (let i = 0; i < events.length; i++) {
      let outcome = logger.log(events[i] as LogEvent);
      if (outcome === false) {
        const { reason, field } = logger.lastRefusal;
        if (reason === 'queue_full') {
          dropped++;
          errors.push({ index: i, reason: 'dropped' });
        } else errors.push({ index: i, reason, ...(field ? { field } : {}) });
        continue;
      }
      if (outcome !== true) outcome = await outcome; // policy wait: room frees as batches go out
      if (outcome) accepted++;
      else {
        dropped++;
        errors.push({ index: i, reason: 'dropped' });
      }
    }
    if (query.get('wait') === 'ack' && accepted > 0 && !(await logger.flush(waitMs))) {
      throw new HttpError(504, `events queued but not acknowledged by Kafka within ${waitMs} ms`);
    }
    const status = dropped > 0 ? 503 : 200;
    send(res, status, { accepted, rejected: errors.length - dropped, dropped, errors }, dropped > 0 ? { 'retry-after': '1' } : {});
  }

  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://ingest');
    const route = `${req.method} ${url.pathname}`;
    const handle = async () => {
      switch (route) {
        case 'POST /v1/events':
          return ingest(req, res, url.searchParams);
        case 'GET /healthz':
          return send(res, 200, 'ok');
        case 'GET /metrics':
          return send(res, 200, await registry.metrics(), { 'content-type': registry.contentType });
        default:
          throw new HttpError(404, `no route ${route}`);
      }
    };
    handle().catch((error: unknown) => {
      if (error instanceof HttpError) {
        // Drain what is left of a refused body so the client reads the answer instead of a reset.
        req.resume();
        send(res, error.status, { error: error.message }, { ...error.headers, connection: 'close' });
      } else {
        options.log?.error({ err: error }, `apilog ingest: ${describeError(error)}`);
        send(res, 500, { error: 'internal error' });
      }
    });
  });
  server.requestTimeout = 60_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 8088, options.host ?? '127.0.0.1', () => resolve());
  });
  const address = server.address() as AddressInfo;
  return {
    server,
    url: `http://${address.address.includes(':') ? `[${address.address}]` : address.address}:${address.port}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

