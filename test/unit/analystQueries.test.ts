/**
 * Every question of the analysts' page (docs/queries.sql) on a known data set in the embedded engine: 30,000
 * synthetic events over 2.5 hours, written through the consumer's RowWriter in consumer-sized batches, with an
 * injected error burst. Raw versions must give exactly the answers computed here in JavaScript; rollup versions
 * the same counts and sums, and latency quantiles (t-digest) close to the exact ones (5% over an hour or a route,
 * 20% for a minute of 50-70 calls).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { SyntheticEvents } from '../../producer/syntheticEvents.ts';
import type { ApiCallEvent } from '../../schemas/apiCall.ts';
import { dateTimeParam, forTable, loadAnalystQueries, type AnalystQuery } from '../../schemas/analystQueries.ts';
import { embeddedClickHouse, writeEvents } from './embeddedClickHouse.ts';

const START = Date.UTC(2026, 10, 2, 9, 0);
const MINUTE = 60_000;
const HOUR = 3_600_000;
const SPIKE = START + 100 * MINUTE;
const events: ApiCallEvent[] = new SyntheticEvents({ seed: 7, apis: 10, startMs: START, stepMs: 300 }).take(30_000);
for (const e of events) {
  if (e.ts >= SPIKE && e.ts < SPIKE + MINUTE && e.api === 'users.get') {
    e.status = 503;
    e.error_class = 'UpstreamUnavailable';
    e.error_message = 'burst';
  }
}

const sink = embeddedClickHouse('apilog-queries-');
const queries = new Map<string, AnalystQuery>(loadAnalystQueries().map((q) => [q.name, q]));

beforeAll(() => writeEvents(sink, 'calls', events));

type Row = Record<string, unknown>;
/** JSON output quotes 64-bit integers: numbers back to numbers, inside maps too. */
const normalize = (rows: Row[]): Row[] =>
  rows.map((r) =>
    Object.fromEntries(
      Object.entries(r).map(([k, v]) => [
        k,
        typeof v === 'string' && /^-?\d+(\.\d+)?$/.test(v) ? Number(v)
        : v !== null && typeof v === 'object' ? Object.fromEntries(Object.entries(v).map(([mk, mv]) => [mk, Number(mv)]))
        : v,
      ]),
    ),
  );

async function run(name: string, source: 'raw' | 'rollup', fromMs: number, toMs: number): Promise<Row[]> {
  const sql = forTable(queries.get(name)!.sql[source], 'calls');
  return normalize(await sink.query<Row>(sql, { from: dateTimeParam(fromMs), to: dateTimeParam(toMs) }));
}

// --- the same questions, answered in JavaScript ---
const failed = (e: ApiCallEvent) => e.status >= 500 || e.error_class !== null;
const inWindow = (from: number, to: number) => events.filter((e) => e.ts >= from && e.ts < to);
/** ClickHouse quantileExact: the element at floor(level * n) of the sorted values. */
const quantileExact = (values: number[], level: number) => [...values].sort((a, b) => a - b)[Math.floor(level * values.length)]!;
const round = (x: number, digits: number) => Math.round(x * 10 ** digits) / 10 ** digits;
function groupBy<K extends string>(list: ApiCallEvent[], key: (e: ApiCallEvent) => K): Map<K, ApiCallEvent[]> {
  const out = new Map<K, ApiCallEvent[]>();
  for (const e of list) {
    const k = key(e);
    const group = out.get(k);
    if (group) group.push(e);
    else out.set(k, [e]);
  }
  return out;
}
const at = (ms: number, grain: number) => dateTimeParam(Math.floor(ms / grain) * grain);
const latencies = (list: ApiCallEvent[]) => list.map((e) => e.latency_us);

/** Rounded ratios may differ in the last digit where JS rounds half up and ClickHouse half to even. */
function expectRowsClose(actual: Row[], expected: Row[], tolerance: Record<string, number> = {}, relative: Record<string, number> = {}): void {
  expect(actual.map((r) => Object.keys(r))).toEqual(expected.map((r) => Object.keys(r)));
  actual.forEach((row, i) => {
    for (const [k, v] of Object.entries(expected[i]!)) {
      const got = row[k];
      if (typeof v === 'number' && (tolerance[k] !== undefined || relative[k] !== undefined)) {
        const allowed = Math.max(tolerance[k] ?? 0, (relative[k] ?? 0) * Math.abs(v)) + 1e-9;
        expect(Math.abs((got as number) - v), `${k} of row ${i}: ${String(got)} vs ${v}`).toBeLessThanOrEqual(allowed);
      } else {
        expect(got, `${k} of row ${i}`).toEqual(v);
      }
    }
  });
}
const withoutKeys = (rows: Row[], keys: string[]) => rows.map((r) => Object.fromEntries(Object.entries(r).filter(([k]) => !keys.includes(k))));

describe("the analysts' page on a known data set (embedded engine)", () => {
  it('failing_now: requests, errors, error rate and error classes per failing API', async () => {
    const from = SPIKE - 10 * MINUTE;
    const to = SPIKE + 5 * MINUTE;
    const expected = [...groupBy(inWindow(from, to), (e) => e.api)]
      .map(([api, list]) => {
        const errors = list.filter(failed).length;
        const byClass: Record<string, number> = {};
        for (const e of list) if (e.error_class !== null) byClass[e.error_class] = (byClass[e.error_class] ?? 0) + 1;
        return { api, requests: list.length, errors, error_rate: round(errors / list.length, 4), errors_by_class: Object.fromEntries(Object.entries(byClass).sort()) };
      })
      .filter((r) => r.errors > 0)
      .sort((a, b) => b.errors - a.errors || (a.api < b.api ? -1 : 1));
    expect(expected[0]!.api).toBe('users.get');
    const raw = await run('failing_now', 'raw', from, to);
    expectRowsClose(raw, expected, { error_rate: 1e-4 });
    expect(await run('failing_now', 'rollup', from, to)).toEqual(raw);
  });

  it('p99_by_minute: exact quantiles from raw rows; rollup t-digest p50 within 20% for minutes of 50+ calls', async () => {
    const from = START + HOUR;
    const to = START + 2 * HOUR;
    const expected = [...groupBy(inWindow(from, to), (e) => `${at(e.ts, MINUTE)}|${e.api}`)]
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([key, list]) => ({
        minute: key.split('|')[0],
        api: key.split('|')[1],
        requests: list.length,
        p50_ms: round(quantileExact(latencies(list), 0.5) / 1000, 1),
        p99_ms: round(quantileExact(latencies(list), 0.99) / 1000, 1),
      }));
    expect(expected.length).toBeGreaterThan(300);
    const raw = await run('p99_by_minute', 'raw', from, to);
    expectRowsClose(raw, expected, { p50_ms: 0.1, p99_ms: 0.1 });
    const rollup = await run('p99_by_minute', 'rollup', from, to);
    expect(withoutKeys(rollup, ['p50_ms', 'p99_ms'])).toEqual(withoutKeys(raw, ['p50_ms', 'p99_ms']));
    // t-digest interpolates while quantileExact picks a value: they agree where a minute has enough calls.
    const busy = rollup.map((r, i) => [r, raw[i]!] as const).filter(([r]) => (r['requests'] as number) >= 50);
    expect(busy.length).toBeGreaterThanOrEqual(60);
    for (const [r, truth] of busy) expect(Math.abs((r['p50_ms'] as number) / (truth['p50_ms'] as number) - 1)).toBeLessThan(0.2);
  });

  it('slowest_routes: per route over the whole data set', async () => {
    const from = START;
    const to = START + 3 * HOUR;
    const expected = [...groupBy(inWindow(from, to), (e) => `${e.api}|${e.method}|${e.route}`)]
      .map(([key, list]) => {
        const [api, method, route] = key.split('|');
        const sum = list.reduce((s, e) => s + e.latency_us, 0);
        return {
          api, method, route,
          requests: list.length,
          avg_ms: round(sum / list.length / 1000, 1),
          p99_ms: round(quantileExact(latencies(list), 0.99) / 1000, 1),
          max_ms: round(Math.max(...latencies(list)) / 1000, 1),
        };
      })
      .filter((r) => r.requests >= 100)
      .sort((a, b) => b.p99_ms - a.p99_ms || (a.api! < b.api! ? -1 : 1));
    expect(expected.length).toBe(10);
    const raw = await run('slowest_routes', 'raw', from, to);
    expectRowsClose(raw, expected, { avg_ms: 0.1, p99_ms: 0.1 });
    const rollup = await run('slowest_routes', 'rollup', from, to);
    const byRoute = (rows: Row[]) => new Map(rows.map((r) => [r['route'] as string, r]));
    const rawByRoute = byRoute(raw);
    for (const [route, r] of byRoute(rollup)) {
      const truth = rawByRoute.get(route)!;
      expect(withoutKeys([r], ['p99_ms'])).toEqual(withoutKeys([truth], ['p99_ms']));
      expect(Math.abs((r['p99_ms'] as number) / (truth['p99_ms'] as number) - 1), route).toBeLessThan(0.05);
    }
  });

  it('top_clients: the ten busiest clients', async () => {
    const from = START;
    const to = START + 3 * HOUR;
    const expected = [...groupBy(inWindow(from, to), (e) => e.client_id ?? '')]
      .map(([client, list]) => ({
        client,
        requests: list.length,
        errors: list.filter(failed).length,
        bytes: list.reduce((s, e) => s + e.request_bytes + e.response_bytes, 0),
        apis: new Set(list.map((e) => e.api)).size,
      }))
      .sort((a, b) => b.requests - a.requests || (a.client < b.client ? -1 : 1))
      .slice(0, 10);
    const raw = await run('top_clients', 'raw', from, to);
    expect(raw).toEqual(expected);
    expect(await run('top_clients', 'rollup', from, to)).toEqual(raw);
  });

  it('error_spikes: finds the injected burst, by the same rule in JavaScript', async () => {
    const from = START + HOUR;
    const to = START + 3 * HOUR;
    const perMinute = [...groupBy(inWindow(from - HOUR, to), (e) => at(e.ts, MINUTE))]
      .map(([minute, list]) => ({ minute, ms: Date.parse(`${minute.replace(' ', 'T')}Z`), requests: list.length, errors: list.filter(failed).length }))
      .sort((a, b) => a.ms - b.ms);
    const expected = perMinute
      .map((m) => {
        const before = perMinute.filter((p) => p.ms >= m.ms - HOUR && p.ms <= m.ms - MINUTE);
        const baseline = before.length === 0 ? Number.NaN : before.reduce((s, p) => s + p.errors, 0) / before.length;
        return { minute: m.minute, ms: m.ms, requests: m.requests, errors: m.errors, baseline: round(baseline, 2) };
      })
      .filter((m) => m.ms >= from && m.errors >= 5 && m.errors > 3 * m.baseline)
      .map(({ ms: _, ...rest }) => rest);
    expect(expected.map((m) => m.minute)).toContain(dateTimeParam(SPIKE));
    const raw = await run('error_spikes', 'raw', from, to);
    expectRowsClose(raw, expected, { baseline: 0.01 });
    expect(await run('error_spikes', 'rollup', from, to)).toEqual(raw);
  });

  it('hourly_trend: traffic, errors and p99 per API per hour', async () => {
    const from = START;
    const to = START + 3 * HOUR;
    const expected = [...groupBy(inWindow(from, to), (e) => `${at(e.ts, HOUR)}|${e.api}`)]
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([key, list]) => ({
        hour: key.split('|')[0],
        api: key.split('|')[1],
        requests: list.length,
        errors: list.filter(failed).length,
        p99_ms: round(quantileExact(latencies(list), 0.99) / 1000, 1),
      }));
    const raw = await run('hourly_trend', 'raw', from, to);
    expectRowsClose(raw, expected, { p99_ms: 0.1 });
    const rollup = await run('hourly_trend', 'rollup', from, to);
    expect(withoutKeys(rollup, ['p99_ms'])).toEqual(withoutKeys(raw, ['p99_ms']));
    rollup.forEach((r, i) => expect(Math.abs((r['p99_ms'] as number) / (raw[i]!['p99_ms'] as number) - 1)).toBeLessThan(0.05));
  });
});
