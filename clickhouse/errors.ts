/**
 * What a ClickHouse error means for the consumer. ClickHouse reports `Code: N. DB::Exception: …`; the code decides:
 * - data errors (a row does not parse or fit the column): the rows are rejected, retrying the same body never helps,
 *   so the batch is split to find the offending rows, which go to the dead-letter topic;
 * - transient server states (too many parts, memory limit, timeouts, table read-only during a restart, ZooKeeper
 *   lost by a replicated table): retriable;
 * - anything else (unknown table, access denied, syntax): not retriable, the consumer stops without committing.
 */
import { ApilogError } from '../runtime/errors.ts';

/**
 * A column's type changed (ALTER … MODIFY COLUMN) after rows were encoded for the old one: the insert was not sent.
 * The consumer reads the columns again and reads the partition again from its last durable offset.
 */
export class ColumnsChangedError extends ApilogError {
  constructor(message: string) {
    super(message, { retriable: false });
  }
}

/** ClickHouse refused the insert because of the data in it (parse or conversion error). */
export class RowsRejectedError extends ApilogError {
  readonly code: number;
  constructor(message: string, code: number, cause?: unknown) {
    super(message, { retriable: false, cause });
    this.code = code;
  }
}

// Codes from ClickHouse's src/Common/ErrorCodes.cpp.
const DATA_ERRORS = new Set([
  6, // CANNOT_PARSE_TEXT
  26, // CANNOT_PARSE_QUOTED_STRING
  27, // CANNOT_PARSE_INPUT_ASSERTION_FAILED
  38, // CANNOT_PARSE_DATE
  41, // CANNOT_PARSE_DATETIME
  53, // TYPE_MISMATCH
  69, // ARGUMENT_OUT_OF_BOUND
  70, // CANNOT_CONVERT_TYPE
  72, // CANNOT_PARSE_NUMBER
  117, // INCORRECT_DATA
  131, // TOO_LARGE_STRING_SIZE
  321, // VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE
  376, // CANNOT_PARSE_UUID
  457, // VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE (newer numbering)
]);

const TRANSIENT = new Set([
  159, // TIMEOUT_EXCEEDED
  164, // READONLY (server starting up)
  202, // TOO_MANY_SIMULTANEOUS_QUERIES
  209, // SOCKET_TIMEOUT
  210, // NETWORK_ERROR
  225, // NO_ZOOKEEPER (a replicated table's server has no ZooKeeper session yet)
  241, // MEMORY_LIMIT_EXCEEDED
  242, // TABLE_IS_READ_ONLY
  252, // TOO_MANY_PARTS
  285, // TOO_FEW_LIVE_REPLICAS (a quorum insert while a replica is down)
  319, // UNKNOWN_STATUS_OF_INSERT (ZooKeeper lost while a replicated insert committed: it may have landed)
  425, // SYSTEM_ERROR
  999, // KEEPER_EXCEPTION (ZooKeeper connection loss or session expiry)
]);

export function clickHouseCode(message: string): number | undefined {
  const m = /Code:\s*(\d+)/.exec(message);
  return m ? Number(m[1]) : undefined;
}

/** Classifies a server-side error message; `undefined` when it carries no ClickHouse code. */
export function classifyByCode(message: string, where: string, cause: unknown): ApilogError | undefined {
  const code = clickHouseCode(message);
  if (code === undefined) return undefined;
  if (DATA_ERRORS.has(code)) return new RowsRejectedError(`${where}: ${message}`, code, cause);
  return new ApilogError(`${where}: ${message}`, { retriable: TRANSIENT.has(code), cause });
}
