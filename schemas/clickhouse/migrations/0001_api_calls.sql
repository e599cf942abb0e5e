-- 0001: the raw API-call log table, one row per event, for current ClickHouse (verified on the embedded engine,
-- chdb / ClickHouse 26.x). Placeholders: {table} (a checked identifier), {raw_ttl}.
--
-- Choices, measured by `npx tsx bench/tableLayout.ts` (see MEASUREMENT below):
-- * ORDER BY (api, ts): every question filters a time range and groups or filters by API. Sorting by API
--   first keeps one API's rows together (its route, method, latency and size distributions compress well)
--   and still lets a time range across all APIs skip granules inside each API's run.
-- * PARTITION BY toDate(ts) with ttl_only_drop_parts: retention drops whole days instead of rewriting parts.
--   {raw_ttl} is `TTL toDateTime(ts) + INTERVAL N DAY` after `apilog migrate --raw-ttl-days N`, nothing by
--   default (keep everything): a TTL also drops old events replayed from Kafka the moment they are inserted.
-- * Codecs: Delta for the sorted, monotonic columns (ts, _offset, _ingested_at), T64 for small integers
--   stored in wide types, ZSTD(1) instead of LZ4 for everything; LowCardinality for the columns with a few
--   thousand values at most (api, method, route, service, instance, environment, client_id, tenant_id,
--   error_class, map keys), plain String for the ones per call (path, ids, messages).
-- * _topic, _partition, _offset: where each row came from (the consumer's exactly-once bookkeeping); the
--   projection by_offset makes `WHERE _topic = ? AND _partition = ? AND _offset >= ?` a range read.
-- * non_replicated_deduplication_window: a retried insert with the same insert_deduplication_token is dropped,
--   here and (with the same setting on the rollup tables) in the materialized views.
--
-- MEASUREMENT (`npx tsx bench/tableLayout.ts --events 2000000`, embedded ClickHouse 26.7, 2 shared cores; reads are
-- the best of 3: 15 minutes across all APIs / one API's p99 per minute over a day / one partition's last offsets):
--   variant         B/event  last_15_min  one_api_day  offset_lookup
--   chosen             65.6      10.4 ms      15.2 ms         4.9 ms   ORDER BY (api, ts), codecs, projection
--   lz4               110.9      11.0 ms      15.1 ms         4.8 ms   same types, default LZ4: +69% bytes
--   ts_first           68.1       6.1 ms      51.0 ms         5.4 ms   ORDER BY ts: per-API reads 3.4x slower
--   hour_api           66.0       8.1 ms      27.8 ms         4.0 ms   ORDER BY (toStartOfHour(ts), api, ts)
--   no_projection      61.5      12.2 ms      20.5 ms         5.5 ms   the projection costs 4 B/event (6%)
-- The codecs save 41% of the disk. ORDER BY (api, ts) keeps per-API reads fastest and costs a few ms on
-- all-API windows, which the rollups serve anyway. The projection costs 6% of the disk and gains little at this
-- size (`npm run bench:queries`, 10 M events: 4.2 ms with it, 4.9 ms without, because _offset compresses to
-- almost nothing); without it the exactly-once lookup reads the three columns of every row, a cost that grows
-- with the table, with it a range of one partition. Drop it (a new migration) if the consumer never looks up.
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
{raw_ttl}
SETTINGS non_replicated_deduplication_window = 1000, ttl_only_drop_parts = 1;
