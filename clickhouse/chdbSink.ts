/**
 * The embedded engine: ClickHouse running inside this process (chdb), on a data directory.
 * One process per directory (chdb locks it), so a directory sink is for one consumer process,
 * the demo and tests; several consumers share a ClickHouse server instead.
 */
import { mkdirSync, rmSync } from 'node:fs';
import { unlink, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { Session } from 'chdb';
import { ApilogError, UnreachableError, describeError } from '../runtime/errors.ts';
import { classifyByCode } from './errors.ts';
import { quoteString } from './serverSink.ts';
import { checkColumnName, checkTableName, type InsertOptions, type QueryParams, type RowFormat, type Sink, type TableColumn } from './sink.ts';

export class ChdbSink implements Sink {
  readonly kind = 'embedded' as const;
  readonly address: string;
  /**
   * RowBinary goes through a file: chdb's raw insert passes the bytes inline in the query, where two newline bytes in
   * a row end the data early (checked with chdb 3.4: its format whitelist is text-only for that reason).
   */
  readonly takesRowBinary: boolean;
  /**
   * Where RowBinary bodies wait for `INSERT … SELECT FROM file()`: inside the data directory, which chdb locks to
   * this process, so what a killed process left there is cleared when the directory is opened again.
   */
  private readonly spoolDir: string;
  private spoolSeq = 0;
  private session: Session | undefined;

  constructor(directory: string) {
    this.address = resolve(directory);
    this.spoolDir = join(this.address, 'apilog-rowbinary');
    // file() reads * ? { } in its path as globs: a directory with them gets JSON lines instead.
    this.takesRowBinary = !/[*?{}]/.test(this.spoolDir);
  }

  private open(): Session {
    if (this.session) return this.session;
    try {
      mkdirSync(this.address, { recursive: true });
      this.session = new Session(this.address);
      rmSync(this.spoolDir, { recursive: true, force: true }); // bodies of a process killed mid-insert
      mkdirSync(this.spoolDir);
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

  async insertJsonEachRow(table: string, body: Buffer, options: InsertOptions = {}): Promise<void> {
    const session = this.open();
    await this.wrap(() => session.insert({ table: checkTableName(table), values: body, format: 'JSONEachRow', settings: options.settings ?? {} }));
  }

  /** `options.queryId` is not used: the engine's queries end with this process, nothing needs to find them. */
  async insertRows(table: string, body: Buffer, format: RowFormat, columns: readonly string[], options: InsertOptions = {}): Promise<void> {
    const session = this.open();
    const settings = options.settings ?? {};
    if (format === 'RowBinary') {
      await this.insertRowBinary(table, body, columns, settings, options.types);
      return;
    }
    await this.wrap(() => session.insert({ table: checkTableName(table), values: body, format, columns: columns.map(checkColumnName), settings }));
  }

  /**
   * A RowBinary body into `columns` of `table`: written to a file, read by `INSERT … SELECT … FROM file(path,
   * 'RowBinary', structure)` with the types the body was encoded for (`encodedAs`; else the table's now), so a column
   * whose type changed since gets its values converted by the INSERT, as from any SELECT. One statement: the same
   * all-or-nothing per partition as any insert.
   */
  private async insertRowBinary(
    table: string, body: Buffer, columns: readonly string[], settings: Record<string, string | number>, encodedAs?: readonly string[],
  ): Promise<void> {
    const types = encodedAs !== undefined ? new Map(columns.map((c, i) => [c, encodedAs[i]])) : new Map((await this.describe(table)).map((c) => [c.name, c.type]));
    const structure = columns.map((c) => {
      const type = types.get(c);
      if (type === undefined) throw new ApilogError(`embedded ClickHouse at ${this.address}: table ${table} has no column ${c}`);
      return `${checkColumnName(c)} ${type}`;
    });
    this.open();
    const file = join(this.spoolDir, `${process.pid}-${this.spoolSeq++}.bin`);
    const list = columns.map(checkColumnName).join(', ');
    const settingsClause = Object.entries(settings).map(([k, v]) => `${checkColumnName(k)} = ${typeof v === 'number' ? v : quoteString(v)}`).join(', ');
    await writeFile(file, body);
    try {
      await this.command(
        `INSERT INTO ${checkTableName(table)} (${list}) SELECT ${list} FROM file(${quoteString(file)}, 'RowBinary', ${quoteString(structure.join(', '))})${settingsClause ? ` SETTINGS ${settingsClause}` : ''}`,
      );
    } finally {
      await unlink(file).catch(() => undefined); // best effort: the directory goes on close
    }
  }

  async close(): Promise<void> {
    if (this.session === undefined) return; // never opened: the directory (and its spool) may be another process's
    this.session.close();
    this.session = undefined;
    rmSync(this.spoolDir, { recursive: true, force: true });
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
