-- Replicated legacy series, 0001: the raw API-call log table on the replicas of one shard of Debian's ClickHouse 18.16
-- (`apilog migrate --clickhouse http://replica-1:8123,http://replica-2:8123` runs each statement on every replica).
-- The columns of the legacy series' 0001 and 0002 (Avro contract v1 and v2), with two differences:
-- * ReplicatedMergeTree: {zookeeper_path} is filled by the migration runner (/clickhouse/tables/{shard}/<db>.<table>);
--   {shard} and {replica} are each server's macros (its config.xml), filled by ClickHouse.
-- * No `_ingested_at DateTime DEFAULT now()`. 18.16 has no insert_deduplication_token: a replicated table drops a
--   block whose data it already has (on any replica: the block ids are in ZooKeeper), and the consumer relies on that
--   when it sends a batch again after a failure. A column the server fills with the time at each insert would make
--   every send new data, stored twice.
-- replicated_deduplication_window: ids of the last 10,000 blocks are kept (the server default is 100; a block is one
-- part: one per month an insert touches), so an insert that runs late at a frozen replica is still recognized.
-- No rollups: the legacy series has none (the current series' rollups need ClickHouse 20+).
CREATE TABLE IF NOT EXISTS {table}
(
    event_id            String,
    ts                  UInt64,
    date                Date MATERIALIZED toDate(intDiv(ts, 1000)),
    api                 String,
    method              String,
    route               String,
    path                String,
    status              UInt16,
    latency_us          UInt64,
    request_bytes       UInt64,
    response_bytes      UInt64,
    service             String,
    instance            String,
    environment         String,
    client_id           Nullable(String),
    client_ip           Nullable(String),
    user_id             Nullable(String),
    tenant_id           Nullable(String),
    trace_id            Nullable(String),
    span_id             Nullable(String),
    error_class         Nullable(String),
    error_message       Nullable(String),
    attributes          String,
    protocol            String DEFAULT 'http',
    region              String DEFAULT '',
    retry_attempt       UInt16 DEFAULT 0,
    upstream_latency_us Nullable(UInt64),
    user_agent          Nullable(String),
    _topic              String,
    _partition          UInt32,
    _offset             UInt64
)
ENGINE = ReplicatedMergeTree('{zookeeper_path}', '{replica}')
PARTITION BY toYYYYMM(date)
ORDER BY (api, ts)
SETTINGS replicated_deduplication_window = 10000;
