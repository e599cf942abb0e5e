/**
 * Realistic synthetic API-call events for the demo, the tests and load generation: skewed API popularity
 * (Zipf-like), log-normal latencies, a few errors. Deterministic for a given seed.
 */
import type { ApiCallEvent } from '../schemas/apiCall.ts';

/** A small, fast, seedable PRNG (mulberry32). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const RESOURCES = ['users', 'orders', 'payments', 'carts', 'products', 'invoices', 'sessions', 'search', 'reviews', 'shipments'];
const VERBS = [
  { method: 'GET', action: 'get', route: (r: string) => `/v1/${r}/:id` },
  { method: 'GET', action: 'list', route: (r: string) => `/v1/${r}` },
  { method: 'POST', action: 'create', route: (r: string) => `/v1/${r}` },
  { method: 'PUT', action: 'update', route: (r: string) => `/v1/${r}/:id` },
  { method: 'DELETE', action: 'delete', route: (r: string) => `/v1/${r}/:id` },
];
const ERRORS = ['TimeoutError', 'UpstreamUnavailable', 'ValidationError', 'NotFound', 'RateLimited'];

export interface ApiSpec {
  readonly api: string;
  readonly method: string;
  readonly route: string;
}

/** The first `count` APIs of the synthetic catalogue (resource × verb). */
export function apiCatalogue(count: number): ApiSpec[] {
  const out: ApiSpec[] = [];
  for (let i = 0; out.length < count; i++) {
    const resource = RESOURCES[i % RESOURCES.length]!;
    const verb = VERBS[Math.floor(i / RESOURCES.length) % VERBS.length]!;
    const suffix = i >= RESOURCES.length * VERBS.length ? `_${Math.floor(i / (RESOURCES.length * VERBS.length))}` : '';
    out.push({ api: `${resource}.${verb.action}${suffix}`, method: verb.method, route: verb.route(resource) });
  }
  return out;
}

export interface SyntheticOptions {
  /** Number of distinct APIs. @default 20 */
  readonly apis?: number;
  /** @default 1 */
  readonly seed?: number;
  /** Timestamp of the first event, ms. @default Date.now() */
  readonly startMs?: number;
  /** Milliseconds between consecutive events. @default 1 */
  readonly stepMs?: number;
  /** Service, instance and environment stamped on every event. */
  readonly service?: string;
  readonly instance?: string;
  readonly environment?: string;
}

/** An endless, deterministic source of events; `next()` returns a fresh object each call. */
export class SyntheticEvents {
  private readonly rand: () => number;
  private readonly catalogue: ApiSpec[];
  private readonly cumulative: number[];
  private readonly opts: Required<SyntheticOptions>;
  private n = 0;

  constructor(options: SyntheticOptions = {}) {
    this.opts = {
      apis: options.apis ?? 20,
      seed: options.seed ?? 1,
      startMs: options.startMs ?? Date.now(),
      stepMs: options.stepMs ?? 1,
      service: options.service ?? 'shop-api',
      instance: options.instance ?? 'shop-api-0',
      environment: options.environment ?? 'dev',
    };
    this.rand = prng(this.opts.seed);
    this.catalogue = apiCatalogue(this.opts.apis);
    // Zipf weights 1/k: the most popular API gets the most calls.
    let sum = 0;
    this.cumulative = this.catalogue.map((_, k) => (sum += 1 / (k + 1)));
    for (let i = 0; i < this.cumulative.length; i++) this.cumulative[i]! /= sum;
  }

  private pickApi(): ApiSpec {
    const r = this.rand();
    let lo = 0;
    let hi = this.cumulative.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.cumulative[mid]! < r) lo = mid + 1;
      else hi = mid;
    }
    return this.catalogue[lo]!;
  }

  private uuid(): string {
    const hex = (n: number) => Math.floor(this.rand() * 16 ** n).toString(16).padStart(n, '0');
    const variant = (8 + Math.floor(this.rand() * 4)).toString(16);
    return `${hex(8)}-${hex(4)}-4${hex(3)}-${variant}${hex(3)}-${hex(12)}`;
  }

  next(): ApiCallEvent {
    const spec = this.pickApi();
    const i = this.n++;
    const r = this.rand();
    const failed = r < 0.03;
    const status = failed ? (r < 0.01 ? 503 : r < 0.02 ? 500 : 429) : r < 0.06 ? 404 : spec.method === 'POST' ? 201 : 200;
    // Log-normal latency around ~20 ms with a long tail.
    const u1 = this.rand() || 1e-9;
    const u2 = this.rand();
    const normal = Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
    const latencyUs = Math.max(50, Math.round(Math.exp(9.9 + 0.8 * normal)));
    const id = 1 + Math.floor(this.rand() * 100_000);
    const path = spec.route.replace(':id', String(id));
    const user = this.rand() < 0.8 ? `user-${Math.floor(this.rand() * 5000)}` : null;
    return {
      event_id: this.uuid(),
      ts: this.opts.startMs + i * this.opts.stepMs,
      api: spec.api,
      method: spec.method,
      route: spec.route,
      path,
      status,
      latency_us: latencyUs,
      request_bytes: spec.method === 'GET' ? 0 : 200 + Math.floor(this.rand() * 2000),
      response_bytes: 100 + Math.floor(this.rand() * 8000),
      service: this.opts.service,
      instance: this.opts.instance,
      environment: this.opts.environment,
      client_id: `client-${Math.floor(this.rand() * 50)}`,
      client_ip: `10.${Math.floor(this.rand() * 256)}.${Math.floor(this.rand() * 256)}.${1 + Math.floor(this.rand() * 254)}`,
      user_id: user,
      tenant_id: user === null ? null : `tenant-${Math.floor(this.rand() * 40)}`,
      trace_id: this.uuid().replace(/-/g, ''),
      span_id: this.uuid().replace(/-/g, '').slice(0, 16),
      error_class: failed ? ERRORS[Math.floor(this.rand() * ERRORS.length)]! : null,
      error_message: failed ? `upstream call failed after ${Math.round(latencyUs / 1000)} ms` : null,
      attributes: this.rand() < 0.5 ? { region: this.rand() < 0.5 ? 'eu-west-1' : 'us-east-1', version: '1.4.2' } : {},
    };
  }

  take(count: number): ApiCallEvent[] {
    const out = new Array<ApiCallEvent>(count);
    for (let i = 0; i < count; i++) out[i] = this.next();
    return out;
  }
}
