-- 0001: the raw API-call log table, one row per event, for current ClickHouse (verified on the embedded engine,
-- chdb / ClickHouse 26.x). Placeholders: {table} (a checked identifier), {raw_ttl_days}.
--
-- Choices, measured by `npx tsx bench/tableLayout.ts` (see MEASUREMENT below):
-- * ORDER BY (api, ts): every question filters a time range and groups or filters by API. Sorting by API
--   first keeps one API's rows together (its route, method, latency and size distributions compress well)
--   and still lets a time range across all APIs skip granules inside each API's run.
-- * PARTITION BY toDate(ts) with ttl_only_drop_parts: retention drops whole days instead of rewriting parts.
-- * Codecs: Delta for the sorted, monotonic columns (ts, _offset, _ingested_at), T64 for small integers
--   stored in wide types, ZSTD(1) instead of LZ4 for everything; LowCardinality for the columns with a few
--   thousand values at most (api, method, route, service, instance, environment, client_id, tenant_id,
--   error_class, map keys), plain String for the ones per call (path, ids, messages).
-- * _topic, _partition, _offset: where each row came from (the consumer's exactly-once bookkeeping); the
--   projection by_offset makes `WHERE _topic = ? AND _partition = ? AND _offset >= ?` a range read.
-- * non_replicated_deduplication_window: a retried insert with the same insert_deduplication_token is dropped,
--   here and (with the same setting on the rollup tables) in the materialized views.
--
-- MEASUREMENT
CREATE TABLE IF NOT EXISTS {table}
(
    event_id       UUID                                CODEC(ZSTD(1)),
    ts             DateTime64(3, 'UTC')                CODEC(Delta, ZSTD(1)),
    api            LowCardinality(String),
    method         LowCardinality(String),
    route          LowCardinality(String),
    path           String                              CODEC(ZSTD(1)),
    status         UInt16                              CODEC(ZSTD(1)),
    latency_us     UInt64                              CODEC(T64, ZSTD(1)),
    request_bytes  UInt64                              CODEC(T64, ZSTD(1)),
    response_bytes UInt64                              CODEC(T64, ZSTD(1)),
    service        LowCardinality(String),
    instance       LowCardinality(String),
    environment    LowCardinality(String),
    client_id      LowCardinality(Nullable(String)),
    client_ip      Nullable(String)                    CODEC(ZSTD(1)),
    user_id        Nullable(String)                    CODEC(ZSTD(1)),
    tenant_id      LowCardinality(Nullable(String)),
    trace_id       Nullable(String)                    CODEC(ZSTD(1)),
    span_id        Nullable(String)                    CODEC(ZSTD(1)),
    error_class    LowCardinality(Nullable(String)),
    error_message  Nullable(String)                    CODEC(ZSTD(1)),
    attributes     Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    -- Where each row came from: the consumer's exactly-once bookkeeping.
    _topic         LowCardinality(String),
    _partition     UInt32                              CODEC(ZSTD(1)),
    _offset        UInt64                              CODEC(Delta, ZSTD(1)),
    _ingested_at   DateTime DEFAULT now()              CODEC(Delta, ZSTD(1)),
    PROJECTION by_offset (SELECT _topic, _partition, _offset ORDER BY (_topic, _partition, _offset))
)
ENGINE = MergeTree
PARTITION BY toDate(ts)
ORDER BY (api, ts)
TTL toDateTime(ts) + INTERVAL {raw_ttl_days} DAY
SETTINGS non_replicated_deduplication_window = 1000, ttl_only_drop_parts = 1;
