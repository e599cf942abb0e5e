-- Legacy series, 0002: the fields version 2 of the Avro contract adds (schemas/avro/api_call.v2.avsc).
-- Same names and defaults as the current series' 0005, in types 18.16 has (no LowCardinality).
-- 18.16 has no ADD COLUMN IF NOT EXISTS: one column per statement, and the runner skips a statement whose
-- column the table already has (a migration interrupted half-way is run again).
ALTER TABLE {table} ADD COLUMN protocol String DEFAULT 'http';
ALTER TABLE {table} ADD COLUMN region String DEFAULT '';
ALTER TABLE {table} ADD COLUMN retry_attempt UInt16 DEFAULT 0;
ALTER TABLE {table} ADD COLUMN upstream_latency_us Nullable(UInt64);
ALTER TABLE {table} ADD COLUMN user_agent Nullable(String);
