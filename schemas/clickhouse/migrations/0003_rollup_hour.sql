-- 0003: the per-minute aggregates of 0002 again per hour, for ranges of days to months (a 30-day trend reads
-- 60x fewer rows than from {table}_1m; see the bench). Fed from {table} directly, not from {table}_1m, so
-- either rollup can be rebuilt from raw rows alone. Placeholders: {table}, {hour_ttl}.
CREATE TABLE IF NOT EXISTS {table}_1h
(
    hour            DateTime('UTC')                                      CODEC(Delta, ZSTD(1)),
    environment     LowCardinality(String),
    service         LowCardinality(String),
    api             LowCardinality(String),
    method          LowCardinality(String),
    route           LowCardinality(String),
    requests        SimpleAggregateFunction(sum, UInt64),
    errors          SimpleAggregateFunction(sum, UInt64),
    status_4xx      SimpleAggregateFunction(sum, UInt64),
    status_5xx      SimpleAggregateFunction(sum, UInt64),
    errors_by_class SimpleAggregateFunction(sumMap, Map(String, UInt64)),
    request_bytes   SimpleAggregateFunction(sum, UInt64),
    response_bytes  SimpleAggregateFunction(sum, UInt64),
    latency_sum_us  SimpleAggregateFunction(sum, UInt64),
    latency_max_us  SimpleAggregateFunction(max, UInt64),
    latency_digest  AggregateFunction(quantileTDigest, UInt64)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(hour)
ORDER BY (hour, environment, service, api, method, route)
{hour_ttl}
SETTINGS non_replicated_deduplication_window = 1000;

CREATE MATERIALIZED VIEW IF NOT EXISTS {table}_1h_mv TO {table}_1h AS
SELECT
    toStartOfHour(ts)                                                           AS hour,
    environment, service, api, method, route,
    count()                                                                     AS requests,
    countIf(status >= 500 OR error_class IS NOT NULL)                           AS errors,
    countIf(status >= 400 AND status < 500)                                     AS status_4xx,
    countIf(status >= 500)                                                      AS status_5xx,
    sumMapIf(map(toString(assumeNotNull(error_class)), toUInt64(1)), error_class IS NOT NULL) AS errors_by_class,
    sum(request_bytes)                                                          AS request_bytes,
    sum(response_bytes)                                                         AS response_bytes,
    sum(latency_us)                                                             AS latency_sum_us,
    max(latency_us)                                                             AS latency_max_us,
    quantileTDigestState(latency_us)                                            AS latency_digest
FROM {table}
GROUP BY hour, environment, service, api, method, route;
