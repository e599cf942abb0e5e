/**
 * The embedded engine: ClickHouse running inside this process (chdb), on a data directory.
 * One process per directory (chdb locks it), so a directory sink is for one consumer process,
 * the demo and tests; several consumers share a ClickHouse server instead.
 */
import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { Session } from 'chdb';
import { ApilogError, UnreachableError, describeError } from '../runtime/errors.ts';
import { classifyByCode } from './clickhouseErrors.ts';
import { checkColumnName, checkTableName, type QueryParams, type RowFormat, type Sink, type TableColumn } from './sink.ts';

export class ChdbSink implements Sink {
  readonly kind = 'embedded' as const;
  readonly address: string;
  private session: Session | undefined;

  constructor(directory: string) {
    this.address = resolve(directory);
  }

  private open(): Session {
    if (this.session) return this.session;
    try {
      mkdirSync(this.address, { recursive: true });
      this.session = new Session(this.address);
      return this.session;
    } catch (error) {
      throw new UnreachableError('ClickHouse', this.address, `embedded engine cannot open the directory: ${describeError(error)}`, error);
    }
  }

  async ping(): Promise<void> {
    await this.query('SELECT 1');
  }

  async version(): Promise<string> {
    const rows = await this.query<{ v: string }>('SELECT version() AS v');
    return rows[0]?.v ?? '0';
  }

  async command(sql: string): Promise<void> {
    const session = this.open();
    await this.wrap(() => session.queryAsync(sql, { format: 'TabSeparated' }));
  }

  async query<T>(sql: string, params?: QueryParams): Promise<T[]> {
    const session = this.open();
    const result = await this.wrap(() =>
      params === undefined
        ? session.queryAsync(sql, { format: 'JSONEachRow' })
        : session.queryBindAsync(sql, params, { format: 'JSONEachRow' }),
    );
    const text = result.text();
    const rows: T[] = [];
    for (const line of text.split('\n')) if (line.length > 0) rows.push(JSON.parse(line) as T);
    return rows;
  }

  async describe(table: string): Promise<TableColumn[]> {
    const rows = await this.query<{ name: string; type: string; default_type: string; default_expression: string }>(`DESCRIBE TABLE ${checkTableName(table)}`);
    return rows.map((r) => ({ name: r.name, type: r.type, defaultKind: r.default_type, defaultExpression: r.default_expression }));
  }

  async insertJsonEachRow(table: string, body: Buffer, settings: Record<string, string | number> = {}): Promise<void> {
    const session = this.open();
    await this.wrap(() => session.insert({ table: checkTableName(table), values: body, format: 'JSONEachRow', settings }));
  }

  async insertRows(table: string, body: Buffer, format: RowFormat, columns: readonly string[], settings: Record<string, string | number> = {}): Promise<void> {
    if (format === 'RowBinary') throw new ApilogError('the embedded engine inserts text formats only (chdb raw insert), not RowBinary');
    const session = this.open();
    await this.wrap(() => session.insert({ table: checkTableName(table), values: body, format, columns: columns.map(checkColumnName), settings }));
  }

  async close(): Promise<void> {
    this.session?.close();
    this.session = undefined;
  }

  private async wrap<T>(run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (error) {
      if (error instanceof ApilogError) throw error;
      const where = `embedded ClickHouse at ${this.address}`;
      throw classifyByCode(describeError(error), where, error) ?? new ApilogError(`${where}: ${describeError(error)}`, { cause: error });
    }
  }
}
