/**
 * `apilog consume` as a process (integration): it serves /healthz, /readyz and /metrics while it lands a topic in the
 * ClickHouse server, and on SIGTERM it commits what is durable, leaves the group and exits 0 within its deadline.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ensureApiCallsTable } from '../../clickhouse/apiCallsTable.ts';
import { ClickHouseServerSink } from '../../clickhouse/serverSink.ts';
import { deadLetterTopicFor } from '../../consumer/deadLetters.ts';
import { SyntheticEvents } from '../../producer/syntheticEvents.ts';
import { ensureTopic } from '../../producer/topic.ts';
import { PROJECT_ROOT } from '../../stack/endpoints.ts';
import { countRows, kafkaClient, produce, stack, uniqueName } from './pipeline.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('apilog consume, the process (integration)', () => {
  it('serves health and metrics, lands the topic, and stops cleanly on SIGTERM', async () => {
    const topic = uniqueName('it-consume');
    const table = uniqueName('consume');
    const group = uniqueName('group');
    const n = 5000;
    await produce(topic, new SyntheticEvents({ seed: 9, startMs: Date.UTC(2026, 10, 4) }).take(n), 3);
    await ensureTopic(kafkaClient(), { topic: deadLetterTopicFor(topic), partitions: 1 });
    const sink = new ClickHouseServerSink({ url: stack().clickhouse });
    await ensureApiCallsTable(sink, table);

    const child = spawn(process.execPath, [
      join(PROJECT_ROOT, 'bin', 'apilog.js'), 'consume', '--brokers', stack().brokers, '--registry', stack().registry,
      '--clickhouse', stack().clickhouse, '--topic', topic, '--table', table, '--group', group, '--metrics-port', '0',
      '--batch-age-ms', '200', '--shutdown-deadline-ms', '20000',
    ], { cwd: PROJECT_ROOT, stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, APILOG_LOG_LEVEL: 'info' } });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => void (stderr += chunk.toString()));
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    try {
      let port = 0;
      for (let i = 0; i < 300 && port === 0; i++) {
        port = Number(/"metricsPort":(\d+)/.exec(stderr)?.[1] ?? 0);
        if (port === 0) await sleep(100);
      }
      expect(port).toBeGreaterThan(0);
      const get = async (path: string) => {
        const res = await fetch(`http://127.0.0.1:${port}${path}`);
        return { status: res.status, text: await res.text() };
      };
      expect((await get('/healthz')).status).toBe(200);
      const deadline = Date.now() + 60_000;
      while ((await countRows(sink, table)) < n && Date.now() < deadline) await sleep(200);
      expect(await countRows(sink, table)).toBe(n);
      let ready = 0;
      for (let i = 0; i < 50 && ready !== 200; i++) {
        ready = (await get('/readyz')).status;
        if (ready !== 200) await sleep(200);
      }
      expect(ready).toBe(200);
      const metrics = (await get('/metrics')).text;
      expect(metrics).toMatch(new RegExp(`apilog_consumer_written_rows_total ${n}\\b`));
      expect(metrics).toContain('apilog_consumer_insert_duration_seconds_bucket');
      expect(metrics).toMatch(/apilog_consumer_lag_records\{topic="[^"]+",partition="\d"\} \d+/);
      expect((await get('/nope')).status).toBe(404);

      const stopAt = Date.now();
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
      expect(Date.now() - stopAt).toBeLessThan(20_000);
      expect(stderr).toContain('"outcome":"clean"');
      expect(stderr).toContain('"rowFormat":"RowBinary"'); // the default: encoded from the Avro bytes
      expect(stderr).not.toMatch(/password/i);
      const admin = kafkaClient().admin();
      await admin.connect();
      const [high, committed] = await Promise.all([admin.fetchTopicOffsets(topic), admin.fetchOffsets({ groupId: group, topics: [topic] })]);
      await admin.disconnect();
      const c = new Map(committed[0]!.partitions.map((p) => [p.partition, p.offset]));
      for (const p of high) expect(c.get(p.partition)).toBe(p.high);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
      await sink.close();
    }
  });
});
