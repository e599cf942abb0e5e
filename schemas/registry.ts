/**
 * Schema registry access over the Confluent API, as Confluent's registry, Apicurio's ccompat API and Karapace serve
 * it: plain HTTP calls through one request() (timeout, errors that name the registry).
 * Writer types are cached by id, with one request in flight per id; `cachedType` serves the hot path
 * without an await.
 */
import avro from 'avsc';
import { Agent, fetch, type RequestInit, type Response } from 'undici';
import { ApilogError, ConfigError, DecodeError, UnreachableError, describeError } from '../runtime/errors.ts';
import { UNTRUSTED_CERTIFICATE } from '../runtime/kafka.ts';

/** Basic-auth credentials, or a bearer token (a registry behind an OAuth proxy, Confluent Cloud's API keys are basic). */
export type RegistryAuth = { readonly username: string; readonly password: string } | { readonly token: string };

export interface RegistryOptions {
  /**
   * Base URL of the Confluent-compatible API, e.g. http://127.0.0.1:8081/apis/ccompat/v7. A `user:password@` in it is
   * taken as basic-auth credentials and removed from `url` (the client's `url` is what messages show).
   */
  readonly url: string;
  /** Per-request timeout. @default 10000 */
  readonly timeoutMs?: number;
  /** Sent with every request; never logged, never in a message. @default none (or the URL's user:password) */
  readonly auth?: RegistryAuth;
  /** PEM certificate(s) of the CA that signed an https:// registry's certificate, trusted besides the system's. @default none */
  readonly ca?: string | Buffer;
}

export class SchemaRegistryClient {
  /** The registry's URL, without credentials. */
  readonly url: string;
  private readonly types = new Map<number, avro.Type>();
  private readonly inFlight = new Map<number, Promise<avro.Type>>();
  private readonly timeoutMs: number;
  // Private fields (#), not `private`: a logger or JSON.stringify that walks the client finds no credentials.
  readonly #authorization: string | undefined;
  readonly #dispatcher: Agent | undefined;

  constructor(options: RegistryOptions) {
    const url = new URL(options.url);
    let auth = options.auth;
    if (url.username !== '' || url.password !== '') {
      if (auth !== undefined) throw new ConfigError('schema registry credentials given twice: in the URL and as options');
      auth = { username: decodeURIComponent(url.username), password: decodeURIComponent(url.password) };
      url.username = '';
      url.password = '';
      this.url = url.toString().replace(/\/+$/, '');
    } else {
      this.url = options.url.replace(/\/+$/, '');
    }
    this.timeoutMs = options.timeoutMs ?? 10_000;
    this.#authorization = auth === undefined ? undefined : authorizationOf(auth);
    this.#dispatcher = options.ca === undefined ? undefined : new Agent({ connect: { ca: options.ca } });
  }

  /** Fails with UnreachableError unless the registry answers its subjects listing; a ConfigError if it refuses the credentials or its certificate is not trusted. */
  async ping(): Promise<void> {
    const res = await this.request('/subjects');
    await res.arrayBuffer();
    if (!res.ok) throw new UnreachableError('schema registry', this.url, `HTTP ${res.status} from ${this.url}/subjects`);
  }

  /**
   * Finds `schema` under `subject` (whoever registered it) or registers it as the subject's next version; returns
   * its id. A subject this call creates gets level BACKWARD (every later version must read the earlier ones); an
   * existing subject keeps its level. A SchemaRefusedError (not retriable) when the subject holds another record
   * type, or the registry finds the schema incompatible with what the subject holds.
   */
  async register(subject: string, schema: string): Promise<number> {
    const path = `/subjects/${encodeURIComponent(subject)}`;
    // normalize: the same schema in other whitespace or key order (Python's AvroSerializer registers it so) is found.
    const found = await this.call<{ id?: unknown }>('POST', `${path}?normalize=true`, { schema });
    if (found.status !== 404) return idIn(found.body, `POST ${path}`);
    const versions = await this.versions(subject);
    if (versions.length > 0) await this.refuseAnotherRecord(subject, schema);
    const res = await this.request(`${path}/versions`, jsonBody('POST', { schema }));
    const text = await res.text();
    if (res.status === 409 || res.status === 422) {
      const level = await this.compatibilityLevel(subject).catch(() => 'unknown');
      throw new SchemaRefusedError(
        subject,
        `schema registry at ${this.url} refused the schema for subject ${subject}: it is not compatible with the latest of its ` +
          `${versions.length} version(s) under level ${level} (${registryMessage(text)})`,
      );
    }
    if (!res.ok) throw new ApilogError(`schema registry answered HTTP ${res.status} to POST ${path}/versions: ${text.slice(0, 300)}`, { retriable: res.status >= 500 });
    const id = idIn(parseJson(text, `POST ${path}/versions`), `POST ${path}/versions`);
    if (versions.length === 0) await this.call('PUT', `/config/${encodeURIComponent(subject)}`, { compatibility: 'BACKWARD' });
    return id;
  }

  /**
   * Refuses to add a version to a subject whose latest version is another record type (or not Avro): under level NONE
   * the registry would take it, and the topic would carry two unrelated record types.
   */
  private async refuseAnotherRecord(subject: string, schema: string): Promise<void> {
    const path = `/subjects/${encodeURIComponent(subject)}/versions/latest`;
    const latest = await this.call<{ schema?: unknown; schemaType?: unknown; version?: unknown }>('GET', path);
    const ours = recordName(schema);
    const theirs = latest.body?.schemaType !== undefined && latest.body.schemaType !== 'AVRO'
      ? `a ${String(latest.body.schemaType)} schema`
      : typeof latest.body?.schema === 'string' ? recordName(latest.body.schema) : undefined;
    if (theirs === undefined || theirs === ours) return;
    const level = await this.compatibilityLevel(subject).catch(() => 'unknown');
    throw new SchemaRefusedError(
      subject,
      `schema registry at ${this.url}: subject ${subject} holds ${theirs} (version ${String(latest.body?.version)}, level ${level}), ` +
        `not ${ours}; another producer writes a different record type to this topic`,
    );
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
  private async call<T>(method: 'GET' | 'POST' | 'PUT', path: string, body?: unknown): Promise<{ status: number; body: T | undefined }> {
    const res = await this.request(path, body === undefined ? { method } : jsonBody(method, body));
    const text = await res.text();
    if (res.status === 404) return { status: 404, body: undefined };
    if (!res.ok) {
      throw new ApilogError(`schema registry answered HTTP ${res.status} to ${method} ${path}: ${text.slice(0, 300)}`, { retriable: res.status >= 500 });
    }
    return { status: res.status, body: parseJson(text, `${method} ${path}`) as T };
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

  /**
   * One request under the client's timeout, with the credentials. A registry that cannot be reached is an
   * UnreachableError; one that refuses the credentials (401, 403), or whose certificate is not trusted, a ConfigError:
   * the same request will never pass.
   */
  private async request(path: string, init: RequestInit = {}): Promise<Response> {
    const headers: Record<string, string> = { ...(init.headers as Record<string, string> | undefined) };
    if (this.#authorization !== undefined) headers['authorization'] = this.#authorization;
    let res: Response;
    try {
      res = await fetch(`${this.url}${path}`, {
        ...init, headers, signal: AbortSignal.timeout(this.timeoutMs), ...(this.#dispatcher ? { dispatcher: this.#dispatcher } : {}),
      });
    } catch (error) {
      const code = (error as { cause?: { code?: unknown } }).cause?.code;
      if (typeof code === 'string' && UNTRUSTED_CERTIFICATE.has(code)) {
        throw new ConfigError(`schema registry at ${this.url}: its TLS certificate is not trusted (${code}): pass the CA that signed it with --registry-ca (or SCHEMA_REGISTRY_CA)`, { cause: error });
      }
      throw new UnreachableError('schema registry', this.url, fetchFailure(error), error);
    }
    if (res.status === 401 || res.status === 403) {
      await res.arrayBuffer();
      throw new ConfigError(
        `schema registry at ${this.url} refused ${this.#authorization === undefined ? 'a request without credentials' : 'the credentials'} (HTTP ${res.status}): ` +
          'set SCHEMA_REGISTRY_USERNAME and SCHEMA_REGISTRY_PASSWORD, or SCHEMA_REGISTRY_TOKEN',
      );
    }
    return res;
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

}

/**
 * The registry will not take apilog's schema under this subject, and asking again will not change that. The message
 * names the subject and the conflict, and says what to do.
 */
export class SchemaRefusedError extends ConfigError {
  readonly subject: string;
  constructor(subject: string, conflict: string) {
    super(
      `${conflict}. Give apilog a topic of its own (--topic, or APILOG_TOPIC), or, if what ${subject} holds is obsolete, ` +
        `delete it (DELETE /subjects/${subject}) and start again`,
    );
    this.subject = subject;
  }
}

function authorizationOf(auth: RegistryAuth): string {
  if ('token' in auth) {
    if (auth.token === '') throw new ConfigError('schema registry token is empty');
    return `Bearer ${auth.token}`;
  }
  if (auth.username === '') throw new ConfigError('schema registry username is empty');
  return `Basic ${Buffer.from(`${auth.username}:${auth.password}`).toString('base64')}`;
}

/** fetch's own message is "fetch failed"; what failed is in its cause (ECONNREFUSED 127.0.0.1:1, a TLS alert, …). */
function fetchFailure(error: unknown): string {
  const cause = (error as { cause?: unknown }).cause;
  if (!(cause instanceof Error)) return describeError(error);
  const code = (cause as { code?: unknown }).code;
  return `${describeError(error)}: ${describeError(cause) || (typeof code === 'string' ? code : cause.name)}`;
}

function jsonBody(method: string, body: unknown): RequestInit {
  return { method, headers: { 'content-type': 'application/vnd.schemaregistry.v1+json' }, body: JSON.stringify(body) };
}

function parseJson(text: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new ApilogError(`schema registry answered ${what} with text that is not JSON: ${text.slice(0, 100)}`, { cause: error });
  }
}

function idIn(body: unknown, what: string): number {
  const id = (body as { id?: unknown } | undefined)?.id;
  if (typeof id !== 'number' || !Number.isInteger(id)) throw new ApilogError(`schema registry answered ${what} without a schema id`);
  return id;
}

/** An Avro schema's full record name (namespace.name), or what it is when it is not a named type. */
function recordName(schema: string): string {
  try {
    const parsed = JSON.parse(schema) as { type?: unknown; name?: unknown; namespace?: unknown };
    if (typeof parsed.name !== 'string') return `an Avro ${typeof parsed === 'string' ? parsed : String(parsed.type)} schema`;
    const full = parsed.name.includes('.') || typeof parsed.namespace !== 'string' || parsed.namespace === '' ? parsed.name : `${parsed.namespace}.${parsed.name}`;
    return `record ${full}`;
  } catch {
    return 'a schema that is not JSON';
  }
}

/** The registry's own words about a refusal: its `message` field, shortened. */
function registryMessage(text: string): string {
  let message = text;
  try {
    const body = JSON.parse(text) as { message?: unknown };
    if (typeof body.message === 'string') message = body.message;
  } catch {
    // not JSON: the text itself
  }
  return message.length > 300 ? `${message.slice(0, 300)}…` : message;
}
