/**
 * The Grafana dashboards (deploy/grafana/dashboards/) and Prometheus alert rules (deploy/prometheus/alerts.yml)
 * as they will run:
 * - every ClickHouse query of the dashboards (panels and variables) is expanded the way Grafana and the ClickHouse
 *   plugin expand it (grafanaMacros.ts) and run on the embedded engine over a known data set written through the
 *   consumer's RowWriter and the real migrations; its rows must equal the answer computed here in JavaScript from the
 *   same events: counts and sums exactly, t-digest quantiles within a stated tolerance of the exact quantile;
 * - a query no expectation covers fails the test, so a new panel cannot go untested;
 * - every PromQL expression (dashboards and alerts) parses with Prometheus's own grammar (@prometheus-io/lezer-promql)
 *   and names only metrics and labels the consumer's registry (consumer/metrics.ts) exports, or Prometheus's `up`;
 * - docs/operations.md's metrics table lists exactly the registry's metrics.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parser } from '@prometheus-io/lezer-promql';
import type { SyntaxNode } from '@lezer/common';
import { beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { ConsumerMetrics } from '../../consumer/metrics.ts';
import { SyntheticEvents } from '../../producer/syntheticEvents.ts';
import type { ApiCallEvent } from '../../schemas/apiCall.ts';
import { PROJECT_ROOT } from '../../stack/endpoints.ts';
import { embeddedClickHouse, writeEvents } from './embeddedClickHouse.ts';
import { expandGrafanaQuery, type GrafanaQueryContext } from './grafanaMacros.ts';

// --- the dashboards, validated as far as this test reads them ---
const CH_TYPE = 'grafana-clickhouse-datasource';
const datasource = z.object({ type: z.string(), uid: z.string() });
const target = z.object({ refId: z.string(), datasource, rawSql: z.string().optional(), format: z.number().optional(), expr: z.string().optional() });
interface Panel {
  id: number;
  type: string;
  title: string;
  datasource?: z.infer<typeof datasource>;
  targets?: z.infer<typeof target>[];
  panels?: Panel[];
}
const panel: z.ZodType<Panel> = z.lazy(() =>
  z.object({ id: z.number(), type: z.string(), title: z.string(), datasource: datasource.optional(), targets: z.array(target).optional(), panels: z.array(panel).optional() }),
);
const dashboardSchema = z.object({
  uid: z.string(),
  title: z.string(),
  panels: z.array(panel),
  templating: z.object({ list: z.array(z.object({ name: z.string(), type: z.string(), datasource: datasource.optional(), query: z.string().optional() })) }),
});
const DASHBOARD_DIR = join(PROJECT_ROOT, 'deploy/grafana/dashboards');
const dashboards = readdirSync(DASHBOARD_DIR)
  .filter((f) => f.endsWith('.json'))
  .map((f) => ({ file: f, ...dashboardSchema.parse(JSON.parse(readFileSync(join(DASHBOARD_DIR, f), 'utf8'))) }));
const allPanels = (list: Panel[]): Panel[] => list.flatMap((p) => [p, ...allPanels(p.panels ?? [])]);

/** Every ClickHouse query of the dashboards, named `<dashboard uid>/<panel title>` or `<uid>/$<variable>`. */
const clickhouseQueries = new Map<string, { sql: string; format?: number }>();
for (const d of dashboards) {
  for (const p of allPanels(d.panels)) {
    for (const t of p.targets ?? []) {
      if (t.datasource.type !== CH_TYPE) continue;
      expect(t.rawSql, `${d.uid}/${p.title}`).toBeDefined();
      clickhouseQueries.set(`${d.uid}/${p.title}${p.targets!.length > 1 ? `#${t.refId}` : ''}`, { sql: t.rawSql!, ...(t.format !== undefined ? { format: t.format } : {}) });
    }
  }
  for (const v of d.templating.list) if (v.datasource?.type === CH_TYPE) clickhouseQueries.set(`${d.uid}/$${v.name}`, { sql: v.query! });
}

// --- the known data: two environments over two hours, one API name with a quote in it ---
const START = Date.UTC(2026, 10, 2, 9, 0);
const MINUTE = 60_000;
const HOUR = 3_600_000;
const QUOTED_API = "o'hare.get";
const events: ApiCallEvent[] = [
  ...new SyntheticEvents({ seed: 3, apis: 4, startMs: START, stepMs: 200, environment: 'prod' }).take(36_000),
  ...new SyntheticEvents({ seed: 4, apis: 4, startMs: START + 137, stepMs: 1000, environment: 'staging' }).take(7_200),
];
events.forEach((e, i) => {
  if (e.environment === 'staging' && i % 10 === 0) e.api = QUOTED_API;
  if (i % 97 === 0) e.client_id = null;
});
const APIS = [...new Set(events.map((e) => e.api))].sort();
const ENVIRONMENTS = ['prod', 'staging'];

const sink = embeddedClickHouse('apilog-dashboards-');
beforeAll(() => writeEvents(sink, 'api_calls', events));

type Row = Record<string, unknown>;
/** JSON output quotes 64-bit integers: numbers back to numbers. */
const normalize = (rows: Row[]): Row[] =>
  rows.map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, typeof v === 'string' && /^-?\d+(\.\d+)?(e[+-]?\d+)?$/.test(v) ? Number(v) : v])));

async function runQuery(name: string, ctx: GrafanaQueryContext): Promise<Row[]> {
  const query = clickhouseQueries.get(name);
  if (query === undefined) throw new Error(`no ClickHouse query ${name} in the dashboards`);
  return normalize(await sink.query<Row>(expandGrafanaQuery(query.sql, ctx)));
}

// --- the same questions, answered in JavaScript, with the plugin's time semantics ---
const sec = (ms: number) => Math.floor(ms / 1000) * 1000;
const floorTo = (ms: number, grain: number) => Math.floor(ms / grain) * grain;
const dateTimeText = (ms: number) => new Date(ms).toISOString().slice(0, 19).replace('T', ' ');
const failed = (e: ApiCallEvent) => e.status >= 500 || e.error_class !== null;
const round = (x: number, digits: number) => Math.round(x * 10 ** digits) / 10 ** digits;
/** ClickHouse quantileExact: the element at floor(level * n) of the sorted values. */
const quantileExact = (values: readonly number[], level: number) => [...values].sort((a, b) => a - b)[Math.floor(level * values.length)]!;

function chosen(ctx: GrafanaQueryContext, name: 'environment' | 'api'): (value: string) => boolean {
  const v = ctx.variables[name];
  return v === 'All' ? () => true : (value) => v!.includes(value);
}
/** Events a panel reads: variables applied, and the time filter its table and macro give. */
function selected(ctx: GrafanaQueryContext, grain: 'minute' | 'raw' | 'hours'): ApiCallEvent[] {
  const env = chosen(ctx, 'environment');
  const api = chosen(ctx, 'api');
  const from = sec(ctx.fromMs);
  const to = sec(ctx.toMs);
  const inRange = {
    // $__timeFilter(minute) on the per-minute rollup: the minute's start within [from, to], both included.
    minute: (e: ApiCallEvent) => floorTo(e.ts, MINUTE) >= from && floorTo(e.ts, MINUTE) <= to,
    // $__timeFilter(ts) on raw rows: DateTime64(3) against whole seconds.
    raw: (e: ApiCallEvent) => e.ts >= from && e.ts <= to,
    // hour >= toStartOfHour($__fromTime) AND hour <= $__toTime on hourly rollups: every hour the range touches.
    hours: (e: ApiCallEvent) => floorTo(e.ts, HOUR) >= floorTo(from, HOUR) && floorTo(e.ts, HOUR) <= to,
  }[grain];
  return events.filter((e) => env(e.environment) && api(e.api) && inRange(e));
}
function groupBy<T>(list: readonly T[], key: (x: T) => string): [string, T[]][] {
  const out = new Map<string, T[]>();
  for (const x of list) {
    const k = key(x);
    const g = out.get(k);
    if (g) g.push(x);
    else out.set(k, [x]);
  }
  return [...out];
}
const sum = (list: readonly ApiCallEvent[], f: (e: ApiCallEvent) => number) => list.reduce((s, e) => s + f(e), 0);
const latency = (list: readonly ApiCallEvent[]) => list.map((e) => e.latency_us);
/** The time-series panels' bucket: the interval, at least a minute, in whole minutes, aligned to the epoch. */
const bucketOf = (ctx: GrafanaQueryContext) => Math.max(Math.floor(Math.max(Math.floor(ctx.intervalMs / 1000), 60) / 60), 1) * MINUTE;

/** How a column is compared: exactly (default), within an absolute tolerance, or as a t-digest quantile. */
type Check = { abs: number } | { quantile: number; minCalls: number; relative: number };
interface Expectation {
  /** Rows in the query's order, each with the number of calls behind it (for quantile checks). */
  rows(ctx: GrafanaQueryContext): { row: Row; calls: number }[];
  checks?: Record<string, Check>;
}

function compare(name: string, actual: Row[], expected: { row: Row; calls: number }[], checks: Record<string, Check> = {}): number {
  expect(actual.map((r) => Object.keys(r)), name).toEqual(expected.map((e) => Object.keys(e.row)));
  let quantilesChecked = 0;
  actual.forEach((row, i) => {
    const { row: want, calls } = expected[i]!;
    for (const [k, v] of Object.entries(want)) {
      const got = row[k];
      const check = checks[k];
      const where = `${name}: ${k} of row ${i} (${JSON.stringify(want)})`;
      if (check === undefined) expect(got, where).toEqual(v);
      else if ('abs' in check) expect(Math.abs((got as number) - (v as number)), `${where}: ${String(got)}`).toBeLessThanOrEqual(check.abs + 1e-9);
      else {
        expect(typeof got, where).toBe('number');
        if (calls >= check.minCalls) {
          expect(Math.abs((got as number) / (v as number) - 1), `${where}: ${String(got)}`).toBeLessThanOrEqual(check.relative);
          quantilesChecked++;
        }
      }
    }
  });
  return quantilesChecked;
}

const P50: Check = { quantile: 0.5, minCalls: 200, relative: 0.05 };
const P99: Check = { quantile: 0.99, minCalls: 1000, relative: 0.1 };
const ms = (us: number) => round(us / 1000, 1);

function perApiSeries(ctx: GrafanaQueryContext, value: (list: ApiCallEvent[], bucketMs: number) => Row): { row: Row; calls: number }[] {
  const bucket = bucketOf(ctx);
  return groupBy(selected(ctx, 'minute'), (e) => `${floorTo(floorTo(e.ts, MINUTE), bucket)}|${e.api}`)
    .map(([key, list]) => ({ time: Number(key.split('|')[0]), api: key.split('|')[1]!, list }))
    .sort((a, b) => a.time - b.time || (a.api < b.api ? -1 : 1))
    .map(({ time, api, list }) => ({ row: { time: dateTimeText(time), api, ...value(list, bucket) }, calls: list.length }));
}
function hourly(ctx: GrafanaQueryContext, value: (list: ApiCallEvent[]) => Row): { row: Row; calls: number }[] {
  return groupBy(selected(ctx, 'hours'), (e) => String(floorTo(e.ts, HOUR)))
    .sort(([a], [b]) => Number(a) - Number(b))
    .map(([time, list]) => ({ row: { time: dateTimeText(Number(time)), ...value(list) }, calls: list.length }));
}
const whole = (ctx: GrafanaQueryContext, value: (list: ApiCallEvent[]) => Row) => {
  const list = selected(ctx, 'minute');
  return [{ row: value(list), calls: list.length }];
};

const EXPECTED: Record<string, Expectation> = {
  'apilog-analysts/$environment': {
    // Lists every environment in the range, whatever is selected.
    rows: (ctx) => [...new Set(selected({ ...ctx, variables: { environment: 'All', api: 'All' } }, 'hours').map((e) => e.environment))].sort().map((environment) => ({ row: { environment }, calls: 0 })),
  },
  'apilog-analysts/$api': {
    // Lists the APIs of the selected environments.
    rows: (ctx) => [...new Set(selected({ ...ctx, variables: { ...ctx.variables, api: 'All' } }, 'hours').map((e) => e.api))].sort().map((api) => ({ row: { api }, calls: 0 })),
  },
  'apilog-analysts/Requests': { rows: (ctx) => whole(ctx, (list) => ({ requests: list.length })) },
  'apilog-analysts/Error rate': { rows: (ctx) => whole(ctx, (list) => ({ error_rate: list.filter(failed).length / list.length })), checks: { error_rate: { abs: 1e-12 } } },
  'apilog-analysts/p50 latency': { rows: (ctx) => whole(ctx, (list) => ({ p50_ms: ms(quantileExact(latency(list), 0.5)) })), checks: { p50_ms: P50 } },
  'apilog-analysts/p99 latency': { rows: (ctx) => whole(ctx, (list) => ({ p99_ms: ms(quantileExact(latency(list), 0.99)) })), checks: { p99_ms: P99 } },
  'apilog-analysts/Requests per second by API': {
    rows: (ctx) => perApiSeries(ctx, (list, bucket) => ({ requests_per_second: list.length / (bucket / 1000) })),
    checks: { requests_per_second: { abs: 1e-9 } },
  },
  'apilog-analysts/Error rate by API': {
    rows: (ctx) => perApiSeries(ctx, (list) => ({ error_rate: list.filter(failed).length / list.length })),
    checks: { error_rate: { abs: 1e-12 } },
  },
  'apilog-analysts/p50 latency by API': { rows: (ctx) => perApiSeries(ctx, (list) => ({ p50_ms: ms(quantileExact(latency(list), 0.5)) })), checks: { p50_ms: P50 } },
  'apilog-analysts/p99 latency by API': { rows: (ctx) => perApiSeries(ctx, (list) => ({ p99_ms: ms(quantileExact(latency(list), 0.99)) })), checks: { p99_ms: P99 } },
  'apilog-analysts/Routes': {
    rows: (ctx) =>
      groupBy(selected(ctx, 'minute'), (e) => `${e.api}|${e.method}|${e.route}`)
        .map(([key, list]) => {
          const [api, method, route] = key.split('|') as [string, string, string];
          const errors = list.filter(failed).length;
          return {
            row: {
              api, method, route,
              requests: list.length,
              errors,
              error_rate: round(errors / list.length, 4),
              avg_ms: round(sum(list, (e) => e.latency_us) / list.length / 1000, 1),
              p50_ms: ms(quantileExact(latency(list), 0.5)),
              p99_ms: ms(quantileExact(latency(list), 0.99)),
              max_ms: ms(Math.max(...latency(list))),
            },
            calls: list.length,
          };
        })
        .sort((a, b) => (b.row.requests as number) - (a.row.requests as number) || (`${a.row.api}|${a.row.method}|${a.row.route}` < `${b.row.api}|${b.row.method}|${b.row.route}` ? -1 : 1))
        .slice(0, 100),
    checks: { error_rate: { abs: 1e-4 }, avg_ms: { abs: 0.1 }, max_ms: { abs: 0.1 }, p50_ms: P50, p99_ms: P99 },
  },
  'apilog-analysts/Errors by class': {
    rows: (ctx) =>
      groupBy(selected(ctx, 'minute').filter((e) => e.error_class !== null), (e) => e.error_class!)
        .map(([error_class, list]) => ({ row: { error_class, errors: list.length }, calls: list.length }))
        .sort((a, b) => (b.row.errors as number) - (a.row.errors as number) || ((a.row.error_class as string) < (b.row.error_class as string) ? -1 : 1)),
  },
  'apilog-analysts/Clients': {
    rows: (ctx) =>
      groupBy(selected(ctx, 'hours'), (e) => e.client_id ?? '')
        .map(([client_id, list]) => {
          const errors = list.filter(failed).length;
          return {
            row: {
              client_id,
              requests: list.length,
              errors,
              error_rate: round(errors / list.length, 4),
              avg_ms: round(sum(list, (e) => e.latency_us) / list.length / 1000, 1),
              bytes: sum(list, (e) => e.request_bytes + e.response_bytes),
            },
            calls: list.length,
          };
        })
        .sort((a, b) => (b.row.requests as number) - (a.row.requests as number) || ((a.row.client_id as string) < (b.row.client_id as string) ? -1 : 1))
        .slice(0, 50),
    checks: { error_rate: { abs: 1e-4 }, avg_ms: { abs: 0.1 } },
  },
  'apilog-analysts/Client latency (raw rows)': {
    rows: (ctx) =>
      groupBy(selected(ctx, 'raw'), (e) => e.client_id ?? '')
        .map(([client_id, list]) => ({
          row: { client_id, requests: list.length, p50_ms: ms(quantileExact(latency(list), 0.5)), p99_ms: ms(quantileExact(latency(list), 0.99)) },
          calls: list.length,
        }))
        .sort((a, b) => (b.row.requests as number) - (a.row.requests as number) || ((a.row.client_id as string) < (b.row.client_id as string) ? -1 : 1))
        .slice(0, 20),
    // A client has a few hundred calls in these ranges: its p99 is the 4th-highest of them, too few for a t-digest bound.
    checks: { p50_ms: P50, p99_ms: { quantile: 0.99, minCalls: Infinity, relative: 0 } },
  },
  'apilog-analysts/Requests per hour': { rows: (ctx) => hourly(ctx, (list) => ({ requests: list.length })) },
  'apilog-analysts/Error rate per hour': { rows: (ctx) => hourly(ctx, (list) => ({ error_rate: list.filter(failed).length / list.length })), checks: { error_rate: { abs: 1e-12 } } },
  'apilog-analysts/Latency per hour': {
    rows: (ctx) => hourly(ctx, (list) => ({ p50_ms: ms(quantileExact(latency(list), 0.5)), p99_ms: ms(quantileExact(latency(list), 0.99)) })),
    checks: { p50_ms: P50, p99_ms: P99 },
  },
};

const OPTIONS = { environment: ENVIRONMENTS, api: APIS };
/** The last hour of the data, whole minutes (Grafana's "previous hour" style range), one-minute interval; prod, every API. */
const aligned: GrafanaQueryContext = { fromMs: START + 30 * MINUTE, toMs: START + 90 * MINUTE - 1000, intervalMs: 60_000, variables: { environment: ['prod'], api: 'All' }, options: OPTIONS };
/** Ragged edges, a 10-minute interval, every environment, two APIs, one of them with a quote in its name. */
const ragged: GrafanaQueryContext = {
  fromMs: START + 17 * MINUTE + 30_250,
  toMs: START + 101 * MINUTE + 15_700,
  intervalMs: 600_000,
  variables: { environment: 'All', api: ['users.get', QUOTED_API] },
  options: OPTIONS,
};
/** A sub-minute interval: buckets stay one minute. */
const fine: GrafanaQueryContext = { ...aligned, intervalMs: 20_000, variables: { environment: 'All', api: 'All' } };
/** The trend panels' own range (timeFrom: 30d) covers all of the data. */
const month: GrafanaQueryContext = { fromMs: START - 29 * 24 * HOUR, toMs: START + 3 * HOUR, intervalMs: HOUR, variables: { environment: 'All', api: 'All' }, options: OPTIONS };

describe('dashboard SQL on the embedded engine, with known data', () => {
  it('covers every ClickHouse query of the dashboards', () => {
    expect([...clickhouseQueries.keys()].sort()).toEqual(Object.keys(EXPECTED).sort());
  });

  it.each(Object.keys(EXPECTED))('%s', async (name) => {
    const { rows, checks } = EXPECTED[name]!;
    const trend = /per hour$/.test(name);
    let quantiles = 0;
    for (const ctx of trend ? [month, ragged] : [aligned, ragged, fine]) {
      const expected = rows(ctx);
      expect(expected.length, `${name}: the data set gives this query rows to return`).toBeGreaterThan(0);
      quantiles += compare(name, await runQuery(name, ctx), expected, checks);
    }
    // Where the panel has quantiles, some rows are busy enough to hold them to their bound.
    const hasBoundedQuantile = Object.values(checks ?? {}).some((c) => 'quantile' in c && c.minCalls !== Infinity);
    if (hasBoundedQuantile) expect(quantiles, `${name}: quantiles compared`).toBeGreaterThan(0);
  });

  it("expands the plugin's macros as its own tests expect (pkg/macros/macros_test.go)", () => {
    const ctx: GrafanaQueryContext = { fromMs: 1415792726371, toMs: 1447328726371, intervalMs: 30_000, variables: {} };
    expect(expandGrafanaQuery('$__fromTime', ctx)).toBe('toDateTime(1415792726)');
    expect(expandGrafanaQuery('$__toTime_ms', ctx)).toBe('fromUnixTimestamp64Milli(1447328726371)');
    expect(expandGrafanaQuery('$__timeFilter(t)', ctx)).toBe('t >= toDateTime(1415792726) AND t <= toDateTime(1447328726)');
    expect(expandGrafanaQuery('$__timeInterval(t)', ctx)).toBe('toStartOfInterval(toDateTime(t), INTERVAL 30 second)');
    expect(expandGrafanaQuery('$__dateFilter(d)', ctx)).toBe("d >= toDate('2014-11-12') AND d <= toDate('2015-11-12')");
    expect(() => expandGrafanaQuery('$__unknownMacro(x)', ctx)).toThrow(/not expanded/);
    const vars: GrafanaQueryContext = { ...ctx, variables: { api: ["o'hare", 'b'], env: 'All' }, options: { env: ['p', 's'] } };
    expect(expandGrafanaQuery('api IN (${api:singlequote}) AND $__conditionalAll(env IN ($env), $env)', vars)).toBe("api IN ('o\\'hare','b') AND 1=1");
  });
});

// --- PromQL: Prometheus's grammar, the consumer's registry ---
const metrics = new ConsumerMetrics();
/** Series name → its labels, as Prometheus stores them after a scrape (job and instance added to every series). */
const SERIES = new Map<string, Set<string>>([['up', new Set(['job', 'instance'])]]);
for (const m of metrics.registry.getMetricsAsArray()) {
  const labels = new Set(['job', 'instance', ...((m as unknown as { labelNames?: string[] }).labelNames ?? [])]);
  const type = (m as unknown as { type: string }).type;
  if (type === 'histogram') {
    SERIES.set(`${m.name}_bucket`, new Set([...labels, 'le']));
    SERIES.set(`${m.name}_sum`, labels);
    SERIES.set(`${m.name}_count`, labels);
  } else if (type === 'summary') {
    SERIES.set(m.name, new Set([...labels, 'quantile']));
    SERIES.set(`${m.name}_sum`, labels);
    SERIES.set(`${m.name}_count`, labels);
  } else {
    SERIES.set(m.name, labels);
  }
}

/** Grafana replaces its range variables before Prometheus sees the query. */
const grafanaRanges = (expr: string) => expr.replace(/\$__(rate_interval|interval|range)\b/g, '5m');
const children = (node: SyntaxNode): SyntaxNode[] => {
  const out: SyntaxNode[] = [];
  for (let c = node.firstChild; c !== null; c = c.nextSibling) out.push(c);
  return out;
};
const descendants = (node: SyntaxNode, name: string): SyntaxNode[] => children(node).flatMap((c) => [...(c.name === name ? [c] : []), ...descendants(c, name)]);

interface PromqlFacts {
  readonly errors: string[];
  /** Labels a result's series carry: the first aggregation's grouping, or the selected metric's labels. */
  readonly outputLabels: Set<string>;
}

/** Parses a PromQL expression; lists what is wrong with it against the registry. */
function checkPromql(expr: string): PromqlFacts {
  const text = grafanaRanges(expr);
  const tree = parser.parse(text);
  const errors: string[] = [];
  const at = (n: SyntaxNode) => text.slice(n.from, n.to);
  tree.iterate({ enter: (n) => void (n.type.isError ? errors.push(`syntax error at ${n.from}: …${text.slice(Math.max(0, n.from - 20), n.from + 20)}…`) : undefined) });
  const top = tree.topNode;
  const labelsOf = (node: SyntaxNode): Set<string> => {
    const out = new Set<string>();
    for (const v of [...(node.name === 'VectorSelector' ? [node] : []), ...descendants(node, 'VectorSelector')]) for (const l of SERIES.get(at(v.getChild('Identifier')!)) ?? []) out.add(l);
    return out;
  };
  for (const v of descendants(top, 'VectorSelector')) {
    const name = at(v.getChild('Identifier')!);
    const labels = SERIES.get(name);
    if (labels === undefined) {
      errors.push(`metric ${name} is not in the consumer's registry`);
      continue;
    }
    for (const l of descendants(v, 'LabelName')) if (!labels.has(at(l))) errors.push(`${name} has no label ${at(l)}`);
  }
  for (const a of descendants(top, 'AggregateExpr')) {
    const available = labelsOf(a);
    for (const g of descendants(a.getChild('AggregateModifier') ?? a, 'LabelName')) {
      if (a.getChild('AggregateModifier') !== null && !available.has(at(g))) errors.push(`grouping by ${at(g)}, which ${at(a).slice(0, 40)}… does not have`);
    }
  }
  // The left-most operand decides a binary expression's labels.
  let left = top.firstChild!;
  while (left.name === 'BinaryExpr' || left.name === 'ParenExpr') left = left.firstChild!.name === '(' ? left.firstChild!.nextSibling! : left.firstChild!;
  const modifier = left.name === 'AggregateExpr' ? left.getChild('AggregateModifier') : null;
  const outputLabels = modifier !== null ? new Set(descendants(modifier, 'LabelName').map(at)) : left.name === 'AggregateExpr' ? new Set<string>() : labelsOf(left);
  return { errors, outputLabels };
}

const promExpressions: { where: string; expr: string }[] = dashboards.flatMap((d) =>
  allPanels(d.panels).flatMap((p) => (p.targets ?? []).filter((t) => t.datasource.type === 'prometheus').map((t) => ({ where: `${d.uid}/${p.title}#${t.refId}`, expr: t.expr ?? '' }))),
);
const rulesSchema = z.object({
  groups: z.array(
    z.object({
      name: z.string(),
      rules: z.array(
        z.object({
          alert: z.string(),
          expr: z.string(),
          for: z.string().regex(/^\d+[smh]$/).optional(),
          labels: z.object({ severity: z.enum(['page', 'warn']) }),
          annotations: z.object({ summary: z.string(), description: z.string() }),
        }).strict(),
      ),
    }),
  ),
});
const rules = rulesSchema.parse(parseYaml(readFileSync(join(PROJECT_ROOT, 'deploy/prometheus/alerts.yml'), 'utf8'))).groups.flatMap((g) => g.rules);

describe('PromQL of the operators dashboard and the alert rules', () => {
  it('has panels for throughput, lag, insert latency, dead letters and retries', () => {
    const text = promExpressions.map((p) => p.expr).join('\n');
    for (const m of ['apilog_consumer_written_rows_total', 'apilog_consumer_lag_records', 'apilog_consumer_insert_duration_seconds_bucket', 'apilog_consumer_dead_letters_total', 'apilog_consumer_retries_total']) {
      expect(text).toContain(m);
    }
  });

  it.each(promExpressions)('$where parses and names metrics and labels the consumer exports', ({ expr }) => {
    expect(checkPromql(expr).errors).toEqual([]);
  });

  it('rejects what the registry does not have (the check itself can fail)', () => {
    expect(checkPromql('rate(apilog_consumer_rows_written_total[5m])').errors).toEqual(["metric apilog_consumer_rows_written_total is not in the consumer's registry"]);
    expect(checkPromql('apilog_consumer_retries_total{reason="x"}').errors).toEqual(['apilog_consumer_retries_total has no label reason']);
    expect(checkPromql('sum by (reason) (apilog_consumer_retries_total)').errors).toHaveLength(1);
    expect(checkPromql('sum(rate(apilog_consumer_batches_total[5m])').errors.length).toBeGreaterThan(0);
  });

  it('alerts on lag growing, dead letters and a consumer down', () => {
    const byName = new Map(rules.map((r) => [r.alert, r]));
    expect(byName.get('ApilogLagGrowing')?.expr).toContain('apilog_consumer_lag_records');
    expect(byName.get('ApilogDeadLetters')?.expr).toContain('apilog_consumer_dead_letters_total');
    expect(byName.get('ApilogConsumerDown')?.expr).toMatch(/^up\{job="apilog-consumer"\} == 0$/);
    expect(byName.get('ApilogConsumerAbsent')?.expr).toContain('absent(up{job="apilog-consumer"}');
  });

  it.each(rules.map((r) => ({ ...r, name: r.alert })))('alert $name parses, names existing metrics, and its annotations use labels its result has', (rule) => {
    const { errors, outputLabels } = checkPromql(rule.expr);
    expect(errors).toEqual([]);
    const used = [...`${rule.annotations.summary} ${rule.annotations.description}`.matchAll(/\$labels\.(\w+)/g)].map((m) => m[1]!);
    expect(used.filter((l) => !outputLabels.has(l))).toEqual([]);
  });

  it('has a case in alerts.test.yml (promtool test rules) where each alert fires, and one where it does not', () => {
    const cases = (parseYaml(readFileSync(join(PROJECT_ROOT, 'deploy/prometheus/alerts.test.yml'), 'utf8')) as {
      tests: { alert_rule_test: { alertname: string; exp_alerts: unknown[] }[] }[];
    }).tests.flatMap((t) => t.alert_rule_test);
    for (const rule of rules) {
      const own = cases.filter((c) => c.alertname === rule.alert);
      expect(own.some((c) => c.exp_alerts.length > 0), `${rule.alert} fires in a case`).toBe(true);
      expect(own.some((c) => c.exp_alerts.length === 0), `${rule.alert} stays quiet in a case`).toBe(true);
    }
  });

  it('selects the scrape job that deploy/prometheus/prometheus.yml defines', () => {
    const config = parseYaml(readFileSync(join(PROJECT_ROOT, 'deploy/prometheus/prometheus.yml'), 'utf8')) as { scrape_configs: { job_name: string }[] };
    const jobs = new Set(config.scrape_configs.map((s) => s.job_name));
    for (const { expr } of [...promExpressions, ...rules]) for (const m of expr.matchAll(/job="([^"]+)"/g)) expect(jobs).toContain(m[1]);
  });
});

describe("the documented metrics table (docs/operations.md)", () => {
  it('lists exactly the metrics the consumer exports, with their types and labels', () => {
    const readme = readFileSync(join(PROJECT_ROOT, 'docs', 'operations.md'), 'utf8');
    const rows = [...readme.matchAll(/^\| `(apilog_consumer_\w+)(?:\{([\w, ]+)\})?` \| (counter|gauge|histogram) \|/gm)].map((m) => ({
      name: m[1]!,
      labels: (m[2] ?? '').split(',').map((l) => l.trim()).filter(Boolean).sort(),
      type: m[3]!,
    }));
    const exported = metrics.registry
      .getMetricsAsArray()
      .filter((m) => m.name.startsWith('apilog_'))
      .map((m) => ({ name: m.name, labels: [...((m as unknown as { labelNames?: string[] }).labelNames ?? [])].sort(), type: (m as unknown as { type: string }).type }));
    expect(rows.sort((a, b) => (a.name < b.name ? -1 : 1))).toEqual(exported.sort((a, b) => (a.name < b.name ? -1 : 1)));
  });
});
