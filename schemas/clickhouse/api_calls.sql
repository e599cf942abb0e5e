-- The raw API-call log table, for current ClickHouse (20.x and later; verified on the embedded engine).
-- {table} is replaced by a checked identifier. The schemas issue refines sort key, codecs and TTL.
CREATE TABLE IF NOT EXISTS {table}
(
    event_id       UUID,
    ts             DateTime64(3, 'UTC'),
    api            LowCardinality(String),
    method         LowCardinality(String),
    route          LowCardinality(String),
    path           String,
    status         UInt16,
    latency_us     UInt64,
    request_bytes  UInt64,
    response_bytes UInt64,
    service        LowCardinality(String),
    instance       LowCardinality(String),
    environment    LowCardinality(String),
    client_id      Nullable(String),
    client_ip      Nullable(String),
    user_id        Nullable(String),
    tenant_id      Nullable(String),
    trace_id       Nullable(String),
    span_id        Nullable(String),
    error_class    Nullable(String),
    error_message  Nullable(String),
    attributes     Map(String, String),
    -- Where each row came from: the consumer's exactly-once bookkeeping.
    _topic         LowCardinality(String),
    _partition     UInt32,
    _offset        UInt64,
    _ingested_at   DateTime DEFAULT now()
)
ENGINE = MergeTree
PARTITION BY toYYYYMMDD(ts)
ORDER BY (api, ts)
