/** `--clickhouse` with several URLs: the replicas of one shard (clickhouse/openSink.ts, clickhouse/replicas.ts). No services. */
import { describe, expect, it } from 'vitest';
import { ChdbSink } from '../../clickhouse/chdbSink.ts';
import { ClickHouseReplicas } from '../../clickhouse/replicas.ts';
import { ClickHouseServerSink } from '../../clickhouse/serverSink.ts';
import { openSink, serverUrls } from '../../clickhouse/openSink.ts';
import { ConfigError } from '../../runtime/errors.ts';

describe('ClickHouse URLs', () => {
  it('one URL is a server, several comma-separated are one replica set, in the order given', async () => {
    const one = await openSink('http://127.0.0.1:8123');
    expect(one).toBeInstanceOf(ClickHouseServerSink);
    const set = await openSink(' http://127.0.0.1:53123 , http://user:secret@127.0.0.1:53223,');
    expect(set).toBeInstanceOf(ClickHouseReplicas);
    expect((set as ClickHouseReplicas).replicas).toHaveLength(2);
    // Credentials never show in the address used for messages and logs.
    expect(set.address).toBe('http://127.0.0.1:53123,http://127.0.0.1:53223');
    expect((set as ClickHouseReplicas).active.address).toBe('http://127.0.0.1:53123');
    await Promise.all([one.close(), set.close()]);
  });

  it('refuses a list with something that is not an http(s) URL, or a server named twice', () => {
    expect(() => serverUrls('http://a:8123,/var/lib/chdb')).toThrow(ConfigError);
    expect(() => serverUrls('http://a:8123,/var/lib/chdb')).toThrow(/several servers are given as http\(s\):\/\/ URLs separated by commas/);
    expect(() => serverUrls('http://a:8123,http://a:8123')).toThrow(/names a server twice/);
  });

  it('a directory is still the embedded engine', async () => {
    expect(await openSink('.stack/chdb-test-unused')).toBeInstanceOf(ChdbSink);
  });
});
