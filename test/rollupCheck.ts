/**
 * Do the rollups equal the raw rows? For each rollup of the current migration series (schemas/clickhouse/migrations
 * 0002-0004), the aggregates recomputed from the raw table are compared group by group with what the rollup holds
 * (sums merged across its parts): requests, errors, status classes, bytes, latency sums and maxima. Used by the crash
 * test's verdict and the rollup tests. A group missing on either side counts as a mismatch.
 */
import { checkTableName, type Sink } from '../clickhouse/sink.ts';

export interface RollupCheck {
  /** Groups that differ, per rollup. */
  readonly mismatched: { readonly minute: number; readonly hour: number; readonly clients: number };
  /** Raw rows, and the requests each rollup counts. */
  readonly rawRows: number;
  readonly requests: { readonly minute: number; readonly hour: number; readonly clients: number };
}

const LEVELS = {
  minute: {
    suffix: '_1m',
    keys: 'minute, environment, service, api, method, route',
    rawKeys: 'toStartOfMinute(ts) AS minute, environment, service, api, method, route',
    measures: ['requests', 'errors', 'status_4xx', 'status_5xx', 'request_bytes', 'response_bytes', 'latency_sum_us', 'latency_max_us'],
  },
  hour: {
    suffix: '_1h',
    keys: 'hour, environment, service, api, method, route',
    rawKeys: 'toStartOfHour(ts) AS hour, environment, service, api, method, route',
    measures: ['requests', 'errors', 'status_4xx', 'status_5xx', 'request_bytes', 'response_bytes', 'latency_sum_us', 'latency_max_us'],
  },
  clients: {
    suffix: '_clients_1h',
    keys: 'hour, environment, client_id, api',
    rawKeys: "toStartOfHour(ts) AS hour, environment, toString(ifNull(client_id, '')) AS client_id, api",
    measures: ['requests', 'errors', 'request_bytes', 'response_bytes', 'latency_sum_us'],
  },
} as const;

/** The measure recomputed from raw rows, as the materialized views compute it. */
const RAW_MEASURE: Record<string, string> = {
  requests: 'count()',
  errors: 'countIf(status >= 500 OR error_class IS NOT NULL)',
  status_4xx: 'countIf(status >= 400 AND status < 500)',
  status_5xx: 'countIf(status >= 500)',
  request_bytes: 'sum(request_bytes)',
  response_bytes: 'sum(response_bytes)',
  latency_sum_us: 'sum(latency_us)',
  latency_max_us: 'max(latency_us)',
};

const merged = (measure: string) => (measure === 'latency_max_us' ? `max(${measure})` : `sum(${measure})`);

export async function checkRollups(sink: Sink, table: string): Promise<RollupCheck> {
  checkTableName(table);
  const mismatched = { minute: 0, hour: 0, clients: 0 };
  const requests = { minute: 0, hour: 0, clients: 0 };
  for (const [level, spec] of Object.entries(LEVELS) as [keyof typeof LEVELS, (typeof LEVELS)[keyof typeof LEVELS]][]) {
    const rollup = `${table}${spec.suffix}`;
    const differs = spec.measures.map((m) => `a.${m} != b.${m}`).join(' OR ');
    const [row] = await sink.query<{ n: string | number }>(
      `SELECT count() AS n FROM (
         SELECT ${spec.keys}, ${spec.measures.map((m) => `${merged(m)} AS ${m}`).join(', ')} FROM ${rollup} GROUP BY ${spec.keys}
       ) AS a FULL OUTER JOIN (
         SELECT ${spec.rawKeys}, ${spec.measures.map((m) => `${RAW_MEASURE[m]} AS ${m}`).join(', ')} FROM ${table} GROUP BY ${spec.keys}
       ) AS b USING (${spec.keys})
       WHERE ${differs}`,
    );
    mismatched[level] = Number(row?.n ?? 0);
    const [total] = await sink.query<{ n: string | number }>(`SELECT sum(requests) AS n FROM ${rollup}`);
    requests[level] = Number(total?.n ?? 0);
  }
  const [raw] = await sink.query<{ n: string | number }>(`SELECT count() AS n FROM ${table}`);
  return { mismatched, rawRows: Number(raw?.n ?? 0), requests };
}

/** Groups that differ, all rollups together: the crash test's "rollup_mismatch". */
export const totalMismatch = (check: RollupCheck) => check.mismatched.minute + check.mismatched.hour + check.mismatched.clients;
