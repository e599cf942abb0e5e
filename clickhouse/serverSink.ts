/** A ClickHouse server over HTTP, through the official client (@clickhouse/client). */
import { Readable } from 'node:stream';
import { ClickHouseLogLevel, createClient, type ClickHouseClient } from '@clickhouse/client';
import { ApilogError, UnreachableError, describeError } from '../runtime/errors.ts';
import { ColumnsChangedError, classifyByCode } from './errors.ts';
import { checkColumnName, checkTableName, type InsertOptions, type QueryParams, type RowFormat, type Sink, type TableColumn } from './sink.ts';

export interface ServerSinkOptions {
  /** http(s)://[user:password@]host:port[/database] */
  readonly url: string;
  /** Overrides the URL's user. From CLICKHOUSE_USER by default. */
  readonly username?: string;
  /** From CLICKHOUSE_PASSWORD by default; never logged. */
  readonly password?: string;
  /** @default 30000 */
  readonly requestTimeoutMs?: number;
  /** PEM CA certificate for https:// URLs signed by a private CA. */
  readonly caCert?: Buffer;
}

/** The URL without credentials, for messages and logs. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    u.username = '';
    u.password = '';
    return u.toString().replace(/\/$/, '');
  } catch {
    return url;
  }
}

export class ClickHouseServerSink implements Sink {
  readonly kind = 'server' as const;
  /** Every server version takes RowBinary over HTTP (18.16 included, checked). */
  readonly takesRowBinary = true;
  readonly address: string;
  private readonly client: ClickHouseClient;
  private serverVersion: string | undefined;

  constructor(options: ServerSinkOptions) {
    this.address = redactUrl(options.url);
    const config: Parameters<typeof createClient>[0] = {
      url: options.url,
      request_timeout: options.requestTimeoutMs ?? 30_000,
      application: 'apilog',
      // The client logs failed requests itself (with stack traces); failures reach us as errors, classified below.
      log: { level: ClickHouseLogLevel.OFF },
    };
    const username = options.username ?? process.env['CLICKHOUSE_USER'];
    const password = options.password ?? process.env['CLICKHOUSE_PASSWORD'];
    if (username !== undefined) config.username = username;
    if (password !== undefined) config.password = password;
    if (options.caCert !== undefined) config.tls = { ca_cert: options.caCert };
    this.client = createClient(config);
  }

  async ping(): Promise<void> {
    const result = await this.client.ping();
    if (!result.success) throw new UnreachableError('ClickHouse', this.address, describeError(result.error), result.error);
  }

  async version(): Promise<string> {
    if (this.serverVersion === undefined) {
      const rows = await this.query<{ v: string }>('SELECT version() AS v');
      this.serverVersion = rows[0]?.v ?? '0';
    }
    return this.serverVersion;
  }

  async command(sql: string): Promise<void> {
    await this.wrap(() => this.client.command({ query: sql }));
  }

  async query<T>(sql: string, params?: QueryParams): Promise<T[]> {
    let text = sql;
    let queryParams: QueryParams | undefined;
    if (params !== undefined) {
      // Servers before 19.x have no query parameters: bind them here, as escaped literals.
      if (majorOf(await this.version()) < 19) text = bindLiterals(sql, params);
      else queryParams = params;
    }
    return this.wrap(async () => {
      const rs = await this.client.query({ query: text, format: 'JSONEachRow', ...(queryParams ? { query_params: queryParams } : {}) });
      return rs.json<T>();
    });
  }

  async describe(table: string): Promise<TableColumn[]> {
    const rows = await this.query<{ name: string; type: string; default_type: string; default_expression: string }>(`DESCRIBE TABLE ${checkTableName(table)}`);
    return rows.map((r) => ({ name: r.name, type: r.type, defaultKind: r.default_type, defaultExpression: r.default_expression }));
  }

  async insertJsonEachRow(table: string, body: Buffer, options: InsertOptions = {}): Promise<void> {
    await this.wrap(async () => {
      const result = await this.client.exec({
        query: `INSERT INTO ${checkTableName(table)} FORMAT JSONEachRow`,
        values: Readable.from([body]),
        clickhouse_settings: options.settings ?? {},
        ...(options.queryId !== undefined ? { query_id: options.queryId } : {}),
      });
      // The response body is empty for an insert; drain it so the socket returns to the pool.
      for await (const _ of result.stream) void _;
    });
  }

  async insertRows(table: string, body: Buffer, format: RowFormat, columns: readonly string[], options: InsertOptions = {}): Promise<void> {
    const list = columns.map(checkColumnName).join(', ');
    if (options.types !== undefined) await checkColumnTypes(this, table, columns, options.types);
    await this.wrap(async () => {
      const result = await this.client.exec({
        query: `INSERT INTO ${checkTableName(table)} (${list}) FORMAT ${format}`,
        values: Readable.from([body]),
        clickhouse_settings: options.settings ?? {},
        ...(options.queryId !== undefined ? { query_id: options.queryId } : {}),
      });
      for await (const _ of result.stream) void _;
    });
  }

  async close(): Promise<void> {
    await this.client.close();
  }

  private async wrap<T>(run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (error) {
      throw classifyClickHouseError(error, this.address);
    }
  }
}

/**
 * Throws ColumnsChangedError unless each of `columns` still has the type a RowBinary body was encoded for (the server
 * would read the bytes with the new type: garbage, no error). One DESCRIBE per insert; an ALTER landing between it
 * and the insert is not caught.
 */
async function checkColumnTypes(sink: Sink, table: string, columns: readonly string[], types: readonly string[]): Promise<void> {
  const now = new Map((await sink.describe(table)).map((c) => [c.name, c.type]));
  const changed = columns.flatMap((c, i) => (now.get(c) === types[i] ? [] : [`${c} was ${types[i]}, now ${now.get(c) ?? 'gone'}`]));
  if (changed.length > 0) throw new ColumnsChangedError(`table ${table} changed under rows waiting to be inserted: ${changed.join('; ')}`);
}

function majorOf(version: string): number {
  return Number.parseInt(version.split('.')[0] ?? '0', 10);
}

/** Connection failures become UnreachableError (retriable); server-side errors keep their message. */
export function classifyClickHouseError(error: unknown, address: string): Error {
  if (error instanceof ApilogError) return error;
  const code = (error as { code?: unknown }).code;
  const message = describeError(error);
  if (
    typeof code === 'string' &&
    ['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'UND_ERR_SOCKET'].includes(code)
  ) {
    return new UnreachableError('ClickHouse', address, message, error);
  }
  if (/timeout|socket hang up|ECONNRESET|ECONNREFUSED/i.test(message)) {
    return new UnreachableError('ClickHouse', address, message, error);
  }
  const where = `ClickHouse at ${address}`;
  const byCode = typeof code === 'string' && /^\d+$/.test(code) ? classifyByCode(`Code: ${code}. ${message}`, where, error) : undefined;
  return byCode ?? classifyByCode(message, where, error) ?? new ApilogError(`${where}: ${message}`, { cause: error });
}

/**
 * Replaces `{name:Type}` placeholders with literals. Only for servers without query parameters:
 * strings are quoted with ClickHouse's escaping (backslash and single quote), numbers must be finite.
 */
export function bindLiterals(sql: string, params: QueryParams): string {
  return sql.replace(/\{([A-Za-z_][A-Za-z0-9_]*):[^}]+\}/g, (_, name: string) => {
    if (!(name in params)) throw new Error(`query parameter ${name} is not bound`);
    const value = params[name]!;
    if (typeof value === 'number') {
      if (!Number.isFinite(value)) throw new Error(`query parameter ${name} is not a finite number`);
      return String(value);
    }
    return quoteString(value);
  });
}

/** A ClickHouse string literal: single quotes, with backslash and quote escaped. */
export function quoteString(value: string): string {
  return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}
