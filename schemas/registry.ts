/**
 * Schema registry access over the Confluent API (@kafkajs/confluent-schema-registry).
 * Writer types are cached by id, with one request in flight per id; `cachedType` serves the hot path
 * without an await.
 */
import { SchemaRegistry, SchemaType } from '@kafkajs/confluent-schema-registry';
import avro from 'avsc';
import { ApilogError, DecodeError, UnreachableError, describeError } from '../runtime/errors.ts';

export interface RegistryOptions {
  /** Base URL of the Confluent-compatible API, e.g. http://127.0.0.1:8081/apis/ccompat/v7. */
  readonly url: string;
  /** Per-request timeout. @default 10000 */
  readonly timeoutMs?: number;
}

export class SchemaRegistryClient {
  readonly url: string;
  private readonly client: SchemaRegistry;
  private readonly types = new Map<number, avro.Type>();
  private readonly inFlight = new Map<number, Promise<avro.Type>>();
  private readonly timeoutMs: number;

  constructor(options: RegistryOptions) {
    this.url = options.url.replace(/\/+$/, '');
    this.timeoutMs = options.timeoutMs ?? 10_000;
    this.client = new SchemaRegistry({ host: this.url, retry: { retries: 0 } });
  }

  /** Fails with UnreachableError unless the registry answers its subjects listing. */
  async ping(): Promise<void> {
    try {
      const res = await fetch(`${this.url}/subjects`, { signal: AbortSignal.timeout(this.timeoutMs) });
      if (!res.ok) throw new Error(`HTTP ${res.status} from ${this.url}/subjects`);
      await res.arrayBuffer();
    } catch (error) {
      throw new UnreachableError('schema registry', this.url, describeError(error), error);
    }
  }

  /** Registers (or finds) `schema` under `subject` with BACKWARD compatibility; returns its id. */
  async register(subject: string, schema: string): Promise<number> {
    try {
      const { id } = await this.client.register({ type: SchemaType.AVRO, schema }, { subject });
      return id;
    } catch (error) {
      throw this.classify(error, `registering a schema under ${subject}`);
    }
  }

  /**
   * The compatibility level that governs `subject`: its own, else the registry's global one.
   * Apicurio answers a subject without its own rule with NONE rather than with the global level.
   */
  async compatibilityLevel(subject: string): Promise<string> {
    const own = await this.call<{ compatibilityLevel?: unknown }>('GET', `/config/${encodeURIComponent(subject)}?defaultToGlobal=true`);
    const found = own.status === 404 ? await this.call<{ compatibilityLevel?: unknown }>('GET', '/config') : own;
    const level = found.body?.compatibilityLevel;
    if (typeof level !== 'string') throw new ApilogError(`schema registry answered no compatibility level for ${subject} (HTTP ${found.status})`);
    return level.toUpperCase();
  }

  /** The registered version numbers of `subject`, oldest first; empty if the subject does not exist. */
  async versions(subject: string): Promise<number[]> {
    const res = await this.call<unknown>('GET', `/subjects/${encodeURIComponent(subject)}/versions`);
    if (res.status === 404) return [];
    if (!Array.isArray(res.body) || !res.body.every((v) => typeof v === 'number')) {
      throw new ApilogError(`schema registry answered an unexpected version list for ${subject}`);
    }
    return res.body as number[];
  }

  /**
   * Asks the registry whether `schema` may be registered as the next version of `subject`, under the subject's
   * compatibility level (POST /compatibility/subjects/{subject}/versions/latest). `undefined` when the subject
   * does not exist (Confluent answers 404; Apicurio 3.0.9 answers is_compatible=true, so callers check `versions` first).
   */
  async testCompatibility(subject: string, schema: string): Promise<{ compatible: boolean; messages: string[] } | undefined> {
    const res = await this.call<{ is_compatible?: unknown; messages?: unknown }>(
      'POST',
      `/compatibility/subjects/${encodeURIComponent(subject)}/versions/latest?verbose=true`,
      { schema },
    );
    if (res.status === 404) return undefined;
    if (typeof res.body?.is_compatible !== 'boolean') {
      throw new ApilogError(`schema registry's compatibility check for ${subject} answered HTTP ${res.status} without is_compatible`, {
        retriable: res.status >= 500,
      });
    }
    const messages = Array.isArray(res.body.messages) ? res.body.messages.map(String) : [];
    return { compatible: res.body.is_compatible, messages };
  }

  /** One JSON request to the Confluent API; non-2xx answers other than 404 are errors (5xx retriable). */
  private async call<T>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<{ status: number; body: T | undefined }> {
    const res = await this.request(
      path,
      body === undefined ? { method } : { method, headers: { 'content-type': 'application/vnd.schemaregistry.v1+json' }, body: JSON.stringify(body) },
    );
    const text = await res.text();
    if (res.status === 404) return { status: 404, body: undefined };
    if (!res.ok) {
      throw new ApilogError(`schema registry answered HTTP ${res.status} to ${method} ${path}: ${text.slice(0, 300)}`, { retriable: res.status >= 500 });
    }
    try {
      return { status: res.status, body: JSON.parse(text) as T };
    } catch (error) {
      throw new ApilogError(`schema registry answered ${method} ${path} with text that is not JSON: ${text.slice(0, 100)}`, { cause: error });
    }
  }

  /** The writer type for a schema id if it is already cached. */
  cachedType(id: number): avro.Type | undefined {
    return this.types.get(id);
  }

  /** The writer type for a schema id, fetched once (concurrent callers share one request). */
  typeOf(id: number): Promise<avro.Type> {
    const cached = this.types.get(id);
    if (cached) return Promise.resolve(cached);
    let pending = this.inFlight.get(id);
    if (!pending) {
      pending = this.fetchType(id).finally(() => this.inFlight.delete(id));
      this.inFlight.set(id, pending);
    }
    return pending;
  }

  /** One request under the client's timeout; a registry that cannot be reached is an UnreachableError. */
  private async request(path: string, init: RequestInit = {}): Promise<Response> {
    try {
      return await fetch(`${this.url}${path}`, { ...init, signal: AbortSignal.timeout(this.timeoutMs) });
    } catch (error) {
      throw new UnreachableError('schema registry', this.url, describeError(error), error);
    }
  }

  private async fetchType(id: number): Promise<avro.Type> {
    const res = await this.request(`/schemas/ids/${id}`);
    if (res.status === 404) {
      await res.arrayBuffer();
      throw new DecodeError('unknown-schema-id', `schema id ${id} is not in the registry at ${this.url}`);
    }
    if (!res.ok) {
      throw new ApilogError(`schema registry answered HTTP ${res.status} for schema id ${id}`, { retriable: res.status >= 500 });
    }
    const body = (await res.json()) as { schema?: unknown; schemaType?: unknown };
    if (typeof body.schema !== 'string') throw new ApilogError(`schema registry returned no schema for id ${id}`);
    if (body.schemaType !== undefined && body.schemaType !== 'AVRO') {
      throw new DecodeError('unknown-schema-id', `schema id ${id} is ${String(body.schemaType)}, not AVRO`);
    }
    const type = avro.Type.forSchema(JSON.parse(body.schema) as avro.Schema);
    this.types.set(id, type);
    return type;
  }

  private classify(error: unknown, what: string): Error {
    if (error instanceof ApilogError) return error;
    const status = (error as { status?: unknown }).status;
    if (typeof status === 'number') {
      return new ApilogError(`schema registry refused ${what}: ${describeError(error)}`, { retriable: status >= 500, cause: error });
    }
    return new UnreachableError('schema registry', this.url, describeError(error), error);
  }
}
