-- 0005: the fields version 2 of the Avro contract adds (schemas/avro/api_call.v2.avsc), as columns with the
-- same defaults as the Avro fields: rows written before this migration, and version-1 events after it, read
-- protocol = 'http', region = '', retry_attempt = 0, upstream_latency_us = NULL, user_agent = NULL.
-- ADD COLUMN only changes metadata: existing parts are not rewritten; defaults are computed when read.
-- Run it before any producer writes version 2: the consumer maps fields to columns by name and drops
-- fields that have no column (it reads the columns when it starts).
ALTER TABLE {table}
    ADD COLUMN IF NOT EXISTS protocol            LowCardinality(String)           DEFAULT 'http',
    ADD COLUMN IF NOT EXISTS region              LowCardinality(String)           DEFAULT '',
    ADD COLUMN IF NOT EXISTS retry_attempt       UInt16                           DEFAULT 0 CODEC(T64, ZSTD(1)),
    ADD COLUMN IF NOT EXISTS upstream_latency_us Nullable(UInt64)                 CODEC(ZSTD(1)),
    ADD COLUMN IF NOT EXISTS user_agent          LowCardinality(Nullable(String));
