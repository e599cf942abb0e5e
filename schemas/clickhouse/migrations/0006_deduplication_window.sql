-- 0006: a longer deduplication window for the raw table and its rollups (was 1000 blocks). The consumer sends a batch
-- again with the same insert_deduplication_token after an insert whose outcome it does not know, and after taking a
-- partition over from an owner that may have sent it; a request of an earlier attempt that the server runs late
-- (a frozen or overloaded server) is dropped as long as its token is still in the window. A block is one part:
-- one per ClickHouse partition an insert touches (a day of the raw table, a month of a rollup), so 10,000 blocks
-- last hours at one insert per second per Kafka partition. The window costs memory and a log file per table, about
-- 100 bytes a block. Placeholders: {table}.
ALTER TABLE {table} MODIFY SETTING non_replicated_deduplication_window = 10000;
ALTER TABLE {table}_1m MODIFY SETTING non_replicated_deduplication_window = 10000;
ALTER TABLE {table}_1h MODIFY SETTING non_replicated_deduplication_window = 10000;
ALTER TABLE {table}_clients_1h MODIFY SETTING non_replicated_deduplication_window = 10000;
