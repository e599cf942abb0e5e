/**
 * A consumer that starts while ClickHouse is away for a moment (integration, `apilog consume` as operators run it,
 * the Debian ClickHouse server behind a TCP proxy that holds requests, test/faults/tcpProxy.ts). A supervisor
 * restarts a consumer during an outage; the preflight waits for the services, but ClickHouse may answer it and then
 * stop answering (a restart, a freeze) while the consumer reads the table it writes to. That read used to end the
 * process (the crash test saw a consumer exit on its own once in CI); now each start-up step waits, as the preflight
 * does, and the consumer goes on to land every record once.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../stack/endpoints.ts';
import { countRows, proxiedScenario, stack, type Cleanup } from './pipeline.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('a consumer starting while ClickHouse stops answering after the preflight (integration)', () => {
  const cleanup: Cleanup = [];
  afterEach(async () => {
    for (const step of cleanup.splice(0).reverse()) await step().catch(() => undefined);
  });

  // The first request of each start-up step that reads the table waits at the proxy four times as long as the
  // consumer waits for an answer; the steps after it go through.
  it.each([
    ['the table check (EXISTS TABLE)', 'EXISTS TABLE'],
    ['the column read (DESCRIBE TABLE)', 'DESCRIBE TABLE'],
  ])('%s times out: the consumer waits, then lands every record once', async (_step, statement) => {
    const n = 2000;
    const { topic, table, group, sink, proxy } = await proxiedScenario('startup', n, 2, cleanup);
    let holdNext = true;
    proxy.holdWhen = (head) => {
      if (!holdNext || !head.includes(`${statement} ${table}`)) return false;
      holdNext = false;
      return true;
    };
    const consumer: ChildProcess = spawn(process.execPath, [
      join(PROJECT_ROOT, 'bin', 'apilog.js'), 'consume', '--brokers', stack().brokers, '--registry', stack().registry,
      '--clickhouse', proxy.url, '--clickhouse-timeout-ms', '1500', '--topic', topic, '--table', table,
      '--group', group, '--metrics-port', '0', '--batch-age-ms', '200',
    ], { cwd: PROJECT_ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    consumer.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    let exitCode: number | null | undefined;
    const exited = new Promise<void>((r) => consumer.once('exit', (code) => ((exitCode = code), r())));
    cleanup.push(async () => {
      consumer.kill('SIGKILL');
      await exited;
    });

    const deadline = Date.now() + 60_000;
    while (proxy.heldCount === 0 && exitCode === undefined && Date.now() < deadline) await sleep(100);
    expect(proxy.heldCount, `the consumer never sent ${statement}: ${stderr.slice(-800)}`).toBe(1);
    await sleep(6000); // four times the consumer's ClickHouse timeout
    proxy.release();
    while ((await countRows(sink, table)) < n && exitCode === undefined && Date.now() < deadline + 30_000) await sleep(200);
    expect(exitCode, `the consumer exited: ${stderr.slice(-800)}`).toBeUndefined();
    const [u] = await sink.query<{ rows: string | number; offsets: string | number }>(
      `SELECT count() AS rows, uniqExact(_partition, _offset) AS offsets FROM ${table}`,
    );
    expect({ rows: Number(u?.rows), offsets: Number(u?.offsets) }).toEqual({ rows: n, offsets: n });
    expect(stderr).toMatch(statement === 'EXISTS TABLE' ? /waiting for the services/ : /waiting for ClickHouse/);
  }, 120_000);
});
