/**
 * Where rows go: one interface, two implementations — a ClickHouse server over HTTP
 * (serverSink.ts) and the embedded engine in this process (chdbSink.ts).
 */

/** A column as DESCRIBE TABLE reports it. */
export interface TableColumn {
  readonly name: string;
  readonly type: string;
  /** '', 'DEFAULT', 'MATERIALIZED', 'ALIAS' or 'EPHEMERAL'. */
  readonly defaultKind: string;
  /** The DEFAULT/MATERIALIZED/ALIAS expression, '' when none. */
  readonly defaultExpression?: string;
}

export type QueryParams = Record<string, string | number>;

/**
 * Row formats the consumer sends: JSONEachRow (objects keyed by column), JSONCompactEachRow (one array per row,
 * values in the order of the insert's column list) and RowBinary (typed little-endian values in that order).
 */
export const ROW_FORMATS = ['RowBinary', 'JSONCompactEachRow', 'JSONEachRow'] as const;
export type RowFormat = (typeof ROW_FORMATS)[number];

/** How a batch's rows are written: the format and, for positional formats, the insert's column list. */
export interface RowLayout {
  readonly format: RowFormat;
  readonly columns: readonly string[];
  /**
   * RowBinary: the column types (as DESCRIBE prints them) the rows were encoded for, in `columns` order. RowBinary
   * carries no types, so rows encoded for a type the column no longer has would be read as garbage: sinks check.
   */
  readonly types?: readonly string[];
}

/** How an insert is sent. */
export interface InsertOptions {
  /** ClickHouse settings for this insert. */
  readonly settings?: Record<string, string | number>;
  /**
   * RowBinary: the column types the body was encoded for, in column order. A server refuses the insert with
   * ColumnsChangedError when the table's types differ now (nothing inserted); the embedded engine reads the body
   * with these types and converts.
   */
  readonly types?: readonly string[];
  /** The query id (servers): lets a fence find the insert in system.processes and kill it. */
  readonly queryId?: string;
}

export interface Sink {
  /** 'server' (HTTP) or 'embedded' (chdb). */
  readonly kind: 'server' | 'embedded';
  /** The URL or directory, for messages. */
  readonly address: string;
  /** Whether insertRows takes RowBinary bodies. */
  readonly takesRowBinary: boolean;

  /** Fails with UnreachableError unless the engine answers. */
  ping(): Promise<void>;
  /** The engine's version string, e.g. '18.16.1' or '26.7.2.1'. */
  version(): Promise<string>;
  /** Runs a statement that returns nothing (DDL). */
  command(sql: string): Promise<void>;
  /**
   * Runs a query and returns its rows. `params` bind `{name:Type}` placeholders; values never enter the SQL text
   * except on servers older than 19.x, which lack query parameters (see ClickHouseServerSink).
   */
  query<T>(sql: string, params?: QueryParams): Promise<T[]>;
  /** The insertable structure of a table. */
  describe(table: string): Promise<TableColumn[]>;
  /**
   * Inserts rows given as JSONEachRow text. Resolves once the engine reports the insert complete
   * (the rows are in parts on disk); rejects otherwise, in which case none or all of a single-partition
   * insert may have landed — callers that need exactly-once must be able to tell (see the consumer).
   */
  insertJsonEachRow(table: string, body: Buffer, options?: InsertOptions): Promise<void>;
  /**
   * Inserts rows in `format` into `columns` of `table` (the other columns take their defaults). Same outcome
   * contract as insertJsonEachRow.
   */
  insertRows(table: string, body: Buffer, format: RowFormat, columns: readonly string[], options?: InsertOptions): Promise<void>;
  close(): Promise<void>;
}

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$/;

/** Table names are identifiers, checked before they are put in SQL text. */
export function checkTableName(table: string): string {
  if (!IDENTIFIER.test(table)) throw new Error(`invalid table name "${table}" (letters, digits, _ and one optional db. prefix)`);
  return table;
}

const COLUMN = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Column names are identifiers, checked before they are put in SQL text. */
export function checkColumnName(column: string): string {
  if (!COLUMN.test(column)) throw new Error(`invalid column name "${column}" (letters, digits and _)`);
  return column;
}
