-- 0004: who calls us: per client, per API, per hour. Client ids are many more than APIs, so this level is
-- hourly only; a missing client_id is ''. Placeholders: {table}, {hour_ttl}.
CREATE TABLE IF NOT EXISTS {table}_clients_1h
(
    hour            DateTime('UTC')                        CODEC(Delta, ZSTD(1)),
    environment     LowCardinality(String),
    client_id       LowCardinality(String),
    api             LowCardinality(String),
    requests        SimpleAggregateFunction(sum, UInt64),
    errors          SimpleAggregateFunction(sum, UInt64),
    request_bytes   SimpleAggregateFunction(sum, UInt64),
    response_bytes  SimpleAggregateFunction(sum, UInt64),
    latency_sum_us  SimpleAggregateFunction(sum, UInt64)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(hour)
ORDER BY (hour, environment, client_id, api)
{hour_ttl}
SETTINGS non_replicated_deduplication_window = 1000;

CREATE MATERIALIZED VIEW IF NOT EXISTS {table}_clients_1h_mv TO {table}_clients_1h AS
SELECT
    toStartOfHour(ts)                                 AS hour,
    environment,
    toString(ifNull(client_id, ''))                   AS client_id,
    api,
    count()                                           AS requests,
    countIf(status >= 500 OR error_class IS NOT NULL) AS errors,
    sum(request_bytes)                                AS request_bytes,
    sum(response_bytes)                               AS response_bytes,
    sum(latency_us)                                   AS latency_sum_us
FROM {table}
GROUP BY hour, environment, client_id, api;
