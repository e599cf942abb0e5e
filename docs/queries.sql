-- The analysts' page: the questions on-call engineers and analysts ask of the API-call logs, as ready queries.
--
-- Each question comes twice: `source: rollup` reads the materialized rollups (what dashboards should use:
-- milliseconds however many events there are) and `source: raw` reads raw rows (the ground truth; also the only
-- way to filter on columns the rollups do not keep). Counts and sums agree exactly between the two when the
-- window is aligned to the rollup's grain (whole minutes for *_1m, whole hours for *_1h); rollup latency
-- quantiles are t-digest estimates, raw ones exact (quantileExact).
--
-- Parameters: {from:DateTime} and {to:DateTime}, UTC, the half-open window [from, to).
--   apilog query --named failing_now                      # window from the header below, ending now
--   apilog query --named p99_by_minute --raw --window 2h   # the raw-row version
--   clickhouse-client --param_from='2026-11-28 10:00:00' --param_to='2026-11-28 10:15:00' --queries-file …
-- Tables are named after the raw table `api_calls` (`--table` renames them all: api_calls_1m, api_calls_1h,
-- api_calls_clients_1h). These need current ClickHouse (the current migration series), not Debian's 18.16.
--
-- A call failed when it has an error_class or a 5xx status (the rollups' `errors`, by the same rule).

-- name: failing_now
-- question: Which APIs are failing right now, how badly, and with which errors?
-- window: 15m
-- source: rollup
SELECT
    api,
    sum(requests)                   AS requests,
    sum(errors)                     AS errors,
    round(errors / requests, 4)     AS error_rate,
    sumMap(errors_by_class)         AS errors_by_class
FROM api_calls_1m
WHERE minute >= {from:DateTime} AND minute < {to:DateTime}
GROUP BY api
HAVING errors > 0
ORDER BY errors DESC, api;

-- name: failing_now
-- source: raw
SELECT
    api,
    count()                                                                                    AS requests,
    countIf(status >= 500 OR error_class IS NOT NULL)                                          AS errors,
    round(errors / requests, 4)                                                                AS error_rate,
    sumMapIf(map(toString(assumeNotNull(error_class)), toUInt64(1)), error_class IS NOT NULL) AS errors_by_class
FROM api_calls
WHERE ts >= {from:DateTime} AND ts < {to:DateTime}
GROUP BY api
HAVING errors > 0
ORDER BY errors DESC, api;

-- name: p99_by_minute
-- question: What is the p50 and p99 latency of each API, minute by minute?
-- window: 1h
-- source: rollup
SELECT
    minute,
    api,
    sum(requests)                                                AS requests,
    round(quantileTDigestMerge(0.5)(latency_digest) / 1000, 1)   AS p50_ms,
    round(quantileTDigestMerge(0.99)(latency_digest) / 1000, 1)  AS p99_ms
FROM api_calls_1m
WHERE minute >= {from:DateTime} AND minute < {to:DateTime}
GROUP BY minute, api
ORDER BY minute, api;

-- name: p99_by_minute
-- source: raw
SELECT
    toStartOfMinute(toDateTime(ts, 'UTC'))          AS minute,
    api,
    count()                                         AS requests,
    round(quantileExact(0.5)(latency_us) / 1000, 1) AS p50_ms,
    round(quantileExact(0.99)(latency_us) / 1000, 1) AS p99_ms
FROM api_calls
WHERE ts >= {from:DateTime} AND ts < {to:DateTime}
GROUP BY minute, api
ORDER BY minute, api;

-- name: slowest_routes
-- question: Which routes are slowest (p99), among those with at least 100 calls?
-- window: 24h
-- source: rollup
SELECT
    api,
    method,
    route,
    sum(requests)                                                AS requests,
    round(sum(latency_sum_us) / requests / 1000, 1)              AS avg_ms,
    round(quantileTDigestMerge(0.99)(latency_digest) / 1000, 1)  AS p99_ms,
    round(max(latency_max_us) / 1000, 1)                         AS max_ms
FROM api_calls_1h
WHERE hour >= {from:DateTime} AND hour < {to:DateTime}
GROUP BY api, method, route
HAVING requests >= 100
ORDER BY p99_ms DESC, api
LIMIT 10;

-- name: slowest_routes
-- source: raw
SELECT
    api,
    method,
    route,
    count()                                          AS requests,
    round(sum(latency_us) / requests / 1000, 1)      AS avg_ms,
    round(quantileExact(0.99)(latency_us) / 1000, 1) AS p99_ms,
    round(max(latency_us) / 1000, 1)                 AS max_ms
FROM api_calls
WHERE ts >= {from:DateTime} AND ts < {to:DateTime}
GROUP BY api, method, route
HAVING requests >= 100
ORDER BY p99_ms DESC, api
LIMIT 10;

-- name: top_clients
-- question: Who calls us most (requests, errors, bytes, how many APIs)?
-- window: 24h
-- source: rollup
SELECT
    client_id                                   AS client,
    sum(requests)                               AS requests,
    sum(errors)                                 AS errors,
    sum(request_bytes) + sum(response_bytes)    AS bytes,
    uniqExact(api)                              AS apis
FROM api_calls_clients_1h
WHERE hour >= {from:DateTime} AND hour < {to:DateTime}
GROUP BY client
ORDER BY requests DESC, client
LIMIT 10;

-- name: top_clients
-- source: raw
SELECT
    toString(ifNull(client_id, ''))                    AS client,
    count()                                            AS requests,
    countIf(status >= 500 OR error_class IS NOT NULL)  AS errors,
    sum(request_bytes) + sum(response_bytes)           AS bytes,
    uniqExact(api)                                     AS apis
FROM api_calls
WHERE ts >= {from:DateTime} AND ts < {to:DateTime}
GROUP BY client
ORDER BY requests DESC, client
LIMIT 10;

-- name: error_spikes
-- question: When did errors spike: minutes with at least 5 errors and more than 3x the average of the hour before?
-- window: 24h
-- source: rollup
SELECT minute, requests, errors, round(baseline, 2) AS baseline
FROM
(
    SELECT
        minute, requests, errors,
        avg(errors) OVER (ORDER BY minute RANGE BETWEEN 3600 PRECEDING AND 60 PRECEDING) AS baseline
    FROM
    (
        SELECT minute, sum(requests) AS requests, sum(errors) AS errors
        FROM api_calls_1m
        WHERE minute >= {from:DateTime} - INTERVAL 1 HOUR AND minute < {to:DateTime}
        GROUP BY minute
    )
)
WHERE minute >= {from:DateTime} AND errors >= 5 AND errors > 3 * baseline
ORDER BY minute;

-- name: error_spikes
-- source: raw
SELECT minute, requests, errors, round(baseline, 2) AS baseline
FROM
(
    SELECT
        minute, requests, errors,
        avg(errors) OVER (ORDER BY minute RANGE BETWEEN 3600 PRECEDING AND 60 PRECEDING) AS baseline
    FROM
    (
        SELECT
            toStartOfMinute(toDateTime(ts, 'UTC'))             AS minute,
            count()                                            AS requests,
            countIf(status >= 500 OR error_class IS NOT NULL)  AS errors
        FROM api_calls
        WHERE ts >= {from:DateTime} - INTERVAL 1 HOUR AND ts < {to:DateTime}
        GROUP BY minute
    )
)
WHERE minute >= {from:DateTime} AND errors >= 5 AND errors > 3 * baseline
ORDER BY minute;

-- name: hourly_trend
-- question: How do traffic, errors and p99 of each API move hour by hour over the last week?
-- window: 7d
-- source: rollup
SELECT
    hour,
    api,
    sum(requests)                                                AS requests,
    sum(errors)                                                  AS errors,
    round(quantileTDigestMerge(0.99)(latency_digest) / 1000, 1)  AS p99_ms
FROM api_calls_1h
WHERE hour >= {from:DateTime} AND hour < {to:DateTime}
GROUP BY hour, api
ORDER BY hour, api;

-- name: hourly_trend
-- source: raw
SELECT
    toStartOfHour(toDateTime(ts, 'UTC'))               AS hour,
    api,
    count()                                            AS requests,
    countIf(status >= 500 OR error_class IS NOT NULL)  AS errors,
    round(quantileExact(0.99)(latency_us) / 1000, 1)   AS p99_ms
FROM api_calls
WHERE ts >= {from:DateTime} AND ts < {to:DateTime}
GROUP BY hour, api
ORDER BY hour, api;
