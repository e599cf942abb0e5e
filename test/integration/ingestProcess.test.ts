/**
 * `apilog ingest` as a process (integration): a topic that does not exist stops it at start with one line (no
 * accepted events that can never arrive), and docs/sdk.md's PHP example, run as written with Debian's php-cli and
 * php-curl against docs/sdk.md's `apilog ingest` command, lands its event in ClickHouse.
 *
 * What differs from docs/sdk.md's text: the port (a free one instead of 8088, which others may hold), the token (the
 * test's own instead of `$(openssl rand -hex 16)`, so the PHP process gets the same one), the endpoints and topic
 * (through the environment variables docs/sdk.md documents), and one line appended to print the answer.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ClickHouseServerSink } from '../../clickhouse/serverSink.ts';
import { PROJECT_ROOT } from '../../stack/endpoints.ts';
import { consumeInto, kafkaClient, readBack, stack, uniqueName } from './pipeline.ts';
import { APILOG, freePort, run, start, waitFor } from './processes.ts';

const README = readFileSync(join(PROJECT_ROOT, 'docs', 'sdk.md'), 'utf8'); // where the PHP example is documented

const endpoints = () => ({ KAFKA_BROKERS: stack().brokers, SCHEMA_REGISTRY_URL: stack().registry, CLICKHOUSE_URL: stack().clickhouse });

describe('apilog ingest, the process (integration)', () => {
  it('a topic that does not exist: one line naming it and what to do, exit 78, within 30 s', async () => {
    const topic = uniqueName('it-ingest-missing');
    const ingest = await run([...APILOG, 'ingest', '--port', String(await freePort()), '--topic', topic], { timeoutMs: 40_000, env: endpoints() });
    expect(ingest.code).toBe(78);
    expect(ingest.ms).toBeLessThan(30_000);
    expect(ingest.stderr.trim().split('\n')).toEqual([
      `apilog: topic ${topic} does not exist in Kafka at ${stack().brokers}: create it, or pass --create-topic (with --partitions N, default 6)`,
    ]);
    const admin = kafkaClient().admin();
    await admin.connect();
    try {
      expect(await admin.listTopics()).not.toContain(topic);
    } finally {
      await admin.disconnect();
    }
  });

  it("docs/sdk.md's PHP example, run as written against its ingest command, lands its event", async () => {
    const command = /`(APILOG_INGEST_TOKEN=\$\(openssl rand -hex 16\) node bin\/apilog\.js ingest [^`]*)`/.exec(README)?.[1];
    const php = /```php\n([\s\S]*?)```/.exec(README)?.[1];
    expect(command).toBeDefined();
    expect(php).toBeDefined();
    const port = await freePort();
    const token = 'php-example-token-0123456789';
    const topic = uniqueName('it-ingest-php');
    const env = { ...endpoints(), APILOG_TOPIC: topic, APILOG_INGEST_TOKEN: token };
    const ingest = start(['sh', '-c', `exec ${command!.replace('APILOG_INGEST_TOKEN=$(openssl rand -hex 16) ', '').replace('--port 8088', `--port ${port}`)}`], { env });
    try {
      expect(await waitFor(() => ingest.stderr().includes(`-> ${topic}`) || ingest.process.exitCode !== null, 60_000)).toBe(true);
      expect(ingest.stderr()).toContain(`POST http://127.0.0.1:${port}/v1/events -> ${topic}`);
      const script = `${php!.replace('127.0.0.1:8088', `127.0.0.1:${port}`)}\necho json_encode($answer), "\\n";\n`;
      const answer = await run(['php', '-r', script.replace(/^<\?php\n/, '')], { timeoutMs: 30_000, env: { APILOG_INGEST_TOKEN: token } });
      expect(answer.stderr).toBe('');
      expect(answer.code).toBe(0);
      // The answer the example's comment shows, after Kafka acknowledged the event (?wait=ack).
      expect(JSON.parse(answer.stdout)).toEqual({ accepted: 1, rejected: 0, dropped: 0, errors: [] });
    } finally {
      expect(await ingest.stop()).toBe(0);
    }
    expect(ingest.stderr()).toContain('apilog ingest: stopped; 1 events sent, 0 dropped, 0 rejected');
    const sink = new ClickHouseServerSink({ url: stack().clickhouse });
    try {
      const table = uniqueName('ingest_php');
      expect(await consumeInto(sink, table, topic, 1)).toBe(1);
      const [event] = await readBack(sink, table);
      expect(event).toMatchObject({
        api: 'orders.create', method: 'POST', route: '/v1/orders', path: '/v1/orders', status: 201, latency_us: 1830,
        request_bytes: 312, response_bytes: 95, service: 'shop-php', environment: 'prod', client_ip: null,
      });
      expect(event!.event_id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      expect(Math.abs(event!.ts - Date.now())).toBeLessThan(5 * 60_000);
    } finally {
      await sink.close();
    }
  });
});
