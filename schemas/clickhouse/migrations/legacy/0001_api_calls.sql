-- Legacy series, 0001: the raw API-call log table for old servers (Debian's ClickHouse 18.16), which lack
-- DateTime64, Map, LowCardinality, TTL and column codecs: ts is epoch milliseconds, attributes a JSON object as
-- text, no retention and no rollups (the analysts' page, docs/queries.sql, needs the current series).
CREATE TABLE IF NOT EXISTS {table}
(
    event_id       String,
    ts             UInt64,
    date           Date MATERIALIZED toDate(intDiv(ts, 1000)),
    api            String,
    method         String,
    route          String,
    path           String,
    status         UInt16,
    latency_us     UInt64,
    request_bytes  UInt64,
    response_bytes UInt64,
    service        String,
    instance       String,
    environment    String,
    client_id      Nullable(String),
    client_ip      Nullable(String),
    user_id        Nullable(String),
    tenant_id      Nullable(String),
    trace_id       Nullable(String),
    span_id        Nullable(String),
    error_class    Nullable(String),
    error_message  Nullable(String),
    attributes     String,
    _topic         String,
    _partition     UInt32,
    _offset        UInt64,
    _ingested_at   DateTime DEFAULT now()
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(date)
ORDER BY (api, ts);
