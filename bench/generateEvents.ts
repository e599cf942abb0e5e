/**
 * Millions of API-call events generated inside ClickHouse (INSERT … SELECT FROM numbers()), because building
 * them in JavaScript on two shared cores takes minutes. The distribution mimics producer/syntheticEvents.ts:
 * Zipf-skewed APIs from the same catalogue, log-normal latencies around 20 ms with a long tail, 3% failures
 * (503/500/429 with an error class), 3% 404, 50 clients, 80% of calls with a user. Randomness is a hash of the
 * row number, so a given (count, start) always produces the same rows (event ids included).
 * Kafka coordinates: partition = API index mod 6 (the topic is keyed by API), offset = row number.
 */
import type { Sink } from '../clickhouse/sink.ts';
import { quoteString } from '../clickhouse/serverSink.ts';
import { checkTableName } from '../clickhouse/sink.ts';
import { apiCatalogue } from '../producer/syntheticEvents.ts';

export interface GenerateOptions {
  readonly count: number;
  /** Distinct APIs. @default 20 */
  readonly apis?: number;
  /** Timestamp of the first event, ms; events are evenly spaced over `spanMs`. */
  readonly startMs: number;
  readonly spanMs: number;
  /** Rows per INSERT (each one a separate insert, as the consumer's batches are). @default 1_000_000 */
  readonly chunk?: number;
}

/** One INSERT … SELECT of rows [first, first + rows) of the sequence; parameters bound by the sink. */
function insertSql(table: string): string {
  // u(k): a uniform number in [0, 1) from the row number n and a stream k.
  const u = (k: number) => `(cityHash64(n, ${k}) / 18446744073709551616.0)`;
  return `
INSERT INTO ${checkTableName(table)}
    (event_id, ts, api, method, route, path, status, latency_us, request_bytes, response_bytes, service, instance,
     environment, client_id, client_ip, user_id, tenant_id, trace_id, span_id, error_class, error_message, attributes,
     _topic, _partition, _offset)
SELECT
    reinterpretAsUUID(reverse(unhex(lower(hex(cityHash64(n, 1))) || lower(hex(cityHash64(n, 2)))))) AS event_id,
    fromUnixTimestamp64Milli(toInt64({start_ms:Int64} + intDiv(n * {span_ms:Int64}, {count:Int64})), 'UTC') AS ts,
    {apis:Array(String)}[k] AS api,
    {methods:Array(String)}[k] AS method,
    {routes:Array(String)}[k] AS route,
    replaceOne(route, ':id', toString(1 + toUInt32(${u(3)} * 100000))) AS path,
    toUInt16(multiIf(r < 0.01, 503, r < 0.02, 500, r < 0.03, 429, r < 0.06, 404, method = 'POST', 201, 200)) AS status,
    toUInt64(greatest(50, round(exp(9.9 + 0.8 * sqrt(-2 * log(greatest(${u(4)}, 1e-9))) * cos(2 * pi() * ${u(5)}))))) AS latency_us,
    toUInt64(if(method = 'GET', 0, 200 + toUInt32(${u(6)} * 2000))) AS request_bytes,
    toUInt64(100 + toUInt32(${u(7)} * 8000)) AS response_bytes,
    'shop-api' AS service,
    concat('shop-api-', toString(n % 4)) AS instance,
    'prod' AS environment,
    concat('client-', toString(toUInt32(pow(${u(8)}, 2) * 50))) AS client_id,
    concat('10.', toString(toUInt8(${u(9)} * 256)), '.', toString(toUInt8(${u(10)} * 256)), '.', toString(1 + toUInt8(${u(11)} * 254))) AS client_ip,
    if(${u(12)} < 0.8, concat('user-', toString(toUInt32(${u(13)} * 5000))), NULL) AS user_id,
    if(user_id IS NULL, NULL, concat('tenant-', toString(toUInt32(${u(14)} * 40)))) AS tenant_id,
    lower(hex(cityHash64(n, 15))) || lower(hex(cityHash64(n, 16))) AS trace_id,
    lower(hex(cityHash64(n, 17))) AS span_id,
    if(r < 0.03, ['TimeoutError', 'UpstreamUnavailable', 'ValidationError', 'NotFound', 'RateLimited'][1 + toUInt32(${u(18)} * 5)], NULL) AS error_class,
    if(r < 0.03, concat('upstream call failed after ', toString(intDiv(latency_us, 1000)), ' ms'), NULL) AS error_message,
    if(${u(19)} < 0.5, map('region', if(${u(20)} < 0.5, 'eu-west-1', 'us-east-1'), 'version', '1.4.2'), map()) AS attributes,
    'api-calls' AS _topic,
    toUInt32((k - 1) % 6) AS _partition,
    n AS _offset
FROM
(
    SELECT number + {first:UInt64} AS n,
           arrayFirstIndex(c -> c >= ${u(0)}, {cumulative:Array(Float64)}) AS k,
           ${u(2)} AS r
    FROM numbers({rows:UInt64})
)`;
}

/** Inserts `count` generated events into `table` in chunks; returns the rows inserted. */
export async function loadGeneratedEvents(sink: Sink, table: string, options: GenerateOptions, onChunk?: (done: number) => void): Promise<number> {
  const catalogue = apiCatalogue(options.apis ?? 20);
  let sum = 0;
  const cumulative = catalogue.map((_, k) => (sum += 1 / (k + 1)));
  const arrayParam = (values: readonly string[]) => `[${values.map(quoteString).join(',')}]`;
  const fixed = {
    start_ms: options.startMs,
    span_ms: options.spanMs,
    count: options.count,
    apis: arrayParam(catalogue.map((c) => c.api)),
    methods: arrayParam(catalogue.map((c) => c.method)),
    routes: arrayParam(catalogue.map((c) => c.route)),
    // The last bound is 1 exactly, so every u in [0, 1) finds an API.
    cumulative: `[${cumulative.map((c, i) => (i === cumulative.length - 1 ? '1' : String(c / sum))).join(',')}]`,
  };
  const chunk = options.chunk ?? 1_000_000;
  const sql = insertSql(table);
  for (let first = 0; first < options.count; first += chunk) {
    const rows = Math.min(chunk, options.count - first);
    await sink.query(sql, { ...fixed, first, rows });
    onChunk?.(first + rows);
  }
  return options.count;
}
