/**
 * The schema registry behind TLS and authentication (integration): Debian's nginx in front of the shared registry
 * (stack/registryProxy.ts; Apicurio's own authentication needs an OIDC server that cannot run here), with a
 * certificate from a CA made with openssl, one port checking basic auth and one a bearer token. The SDK, `apilog
 * consume`, `apilog ingest` and `apilog schemas check` work through it with the CA and credentials from the
 * environment; wrong credentials or an untrusted certificate end a command at once with one line naming the
 * registry; no secret shows in output, logs or process titles.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClickHouseServerSink } from '../../clickhouse/serverSink.ts';
import { createApiLogger } from '../../producer/apiLogger.ts';
import { SyntheticEvents } from '../../producer/syntheticEvents.ts';
import { ensureTopic } from '../../producer/topic.ts';
import { SchemaRegistryClient } from '../../schemas/registry.ts';
import { registryProxyService, type RegistryProxy } from '../../stack/registryProxy.ts';
import { startService, stopService } from '../../stack/stack.ts';
import { countRows, kafkaClient, stack, uniqueName } from './pipeline.ts';
import { APILOG, freePort, run, start, waitFor } from './processes.ts';

const USERNAME = 'apilog-producer';
const PASSWORD = `pw-${randomBytes(12).toString('hex')}`;
const TOKEN = `tok-${randomBytes(16).toString('hex')}`;
const SECRETS = [PASSWORD, TOKEN, Buffer.from(`${USERNAME}:${PASSWORD}`).toString('base64')];

/** Neither the output nor the process's command line holds a secret. */
function expectNoSecret(...texts: string[]): void {
  for (const text of texts) for (const secret of SECRETS) expect(text).not.toContain(secret);
}

describe('schema registry behind TLS and authentication (integration)', () => {
  let proxy: RegistryProxy;
  let ca: Buffer;
  beforeAll(async () => {
    const upstream = new URL(stack().registry).host;
    proxy = registryProxyService({
      id: `registry-proxy-${process.pid}`, basicPort: await freePort(), bearerPort: await freePort(), upstream,
      username: USERNAME, password: PASSWORD, token: TOKEN,
    });
    await startService(proxy, { verbose: false });
    ca = readFileSync(proxy.certificates.caCert);
  }, 180_000);
  afterAll(async () => {
    if (proxy) await stopService(proxy);
    if (proxy) rmSync(dirname(dirname(proxy.certificates.caCert)), { recursive: true, force: true });
  });

  const s = () => stack();
  const cli = (url: string, env: Record<string, string>) => ({
    args: ['--brokers', s().brokers, '--registry', url, '--clickhouse', s().clickhouse],
    env: { SCHEMA_REGISTRY_CA: proxy.certificates.caCert, APILOG_LOG_LEVEL: 'info', ...env },
  });

  it('the SDK (basic auth) writes, `apilog consume` (bearer token) lands the events; no secret in output or process title', async () => {
    const topic = uniqueName('it-reg-tls');
    const table = uniqueName('reg_tls');
    await ensureTopic(kafkaClient(), { topic, partitions: 2 });
    const registry = new SchemaRegistryClient({ url: proxy.basicUrl, auth: { username: USERNAME, password: PASSWORD }, ca });
    expect(JSON.stringify(registry)).not.toContain(PASSWORD);
    const logger = await createApiLogger({ brokers: [s().brokers], registry, topic, compression: 'zstd' });
    const events = new SyntheticEvents({ seed: 31, startMs: Date.UTC(2026, 10, 10) }).take(500);
    for (const e of events) expect(logger.log(e)).toBe(true);
    expect((await logger.close()).sent).toBe(500);

    const { args, env } = cli(proxy.bearerUrl, { SCHEMA_REGISTRY_TOKEN: TOKEN });
    const consume = start([...APILOG, 'consume', ...args, '--topic', topic, '--table', table, '--group', uniqueName('group'),
      '--create-table', '--metrics-port', '0', '--batch-age-ms', '200'], { env });
    const sink = new ClickHouseServerSink({ url: s().clickhouse });
    try {
      expect(await waitFor(async () => consume.process.exitCode !== null || (await countRows(sink, table).catch(() => 0)) >= 500, 60_000)).toBe(true);
      const title = readFileSync(`/proc/${consume.process.pid}/cmdline`, 'utf8');
      expect(await consume.stop(20_000)).toBe(0);
      expect(await countRows(sink, table)).toBe(500);
      expectNoSecret(consume.stderr(), consume.stdout(), title);
    } finally {
      if (consume.process.exitCode === null) consume.process.kill('SIGKILL');
      await sink.close();
    }
  });

  it('`apilog ingest` (basic auth) and `apilog schemas check` (bearer token) through the proxy', async () => {
    const topic = uniqueName('it-reg-tls-ingest');
    await ensureTopic(kafkaClient(), { topic, partitions: 1 });
    const basic = cli(proxy.basicUrl, { SCHEMA_REGISTRY_USERNAME: USERNAME, SCHEMA_REGISTRY_PASSWORD: PASSWORD });
    const port = await freePort();
    const ingest = start([...APILOG, 'ingest', ...basic.args, '--topic', topic, '--port', String(port)], { env: basic.env });
    try {
      expect(await waitFor(() => ingest.stderr().includes(`-> ${topic}`) || ingest.process.exitCode !== null, 30_000)).toBe(true);
      const [event] = new SyntheticEvents({ seed: 32 }).take(1);
      const res = await fetch(`http://127.0.0.1:${port}/v1/events?wait=ack`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify([event]) });
      expect(await res.json()).toMatchObject({ accepted: 1, rejected: 0, dropped: 0 });
    } finally {
      expect(await ingest.stop()).toBe(0);
    }
    expectNoSecret(ingest.stderr(), ingest.stdout());

    const bearer = cli(proxy.bearerUrl, { SCHEMA_REGISTRY_TOKEN: TOKEN });
    const check = await run([...APILOG, 'schemas', 'check', ...bearer.args, '--topic', topic], { env: bearer.env });
    expect(check.code).toBe(0);
    expect(check.stdout).toMatch(new RegExp(`registry  v2 against ${topic}-value \\(latest 1, level BACKWARD\\): compatible`));
    expectNoSecret(check.stderr, check.stdout);
  });

  const refusals: [string, (p: RegistryProxy) => string, Record<string, string>, RegExp][] = [
    ['a wrong password', (p) => p.basicUrl, { SCHEMA_REGISTRY_USERNAME: USERNAME, SCHEMA_REGISTRY_PASSWORD: 'not-the-password' }, /refused the credentials \(HTTP 401\): set SCHEMA_REGISTRY_USERNAME and SCHEMA_REGISTRY_PASSWORD, or SCHEMA_REGISTRY_TOKEN$/],
    ['a wrong token', (p) => p.bearerUrl, { SCHEMA_REGISTRY_TOKEN: 'tok-wrong' }, /refused the credentials \(HTTP 401\)/],
    ['no credentials', (p) => p.basicUrl, {}, /refused a request without credentials \(HTTP 401\)/],
  ];
  for (const [what, url, credentials, expected] of refusals) {
    it(`${what}: consume ends at once with one line naming the registry, exit 78, no retry loop`, async () => {
      const { args, env } = cli(url(proxy), credentials);
      const consume = await run([...APILOG, 'consume', ...args, '--topic', uniqueName('it-reg-refused'), '--metrics-port', '0'], { timeoutMs: 40_000, env });
      expect(consume.code).toBe(78);
      expect(consume.ms).toBeLessThan(20_000);
      expect(consume.stderr).not.toContain('waiting for the services');
      const last = consume.stderr.trim().split('\n').at(-1)!;
      expect(last.startsWith(`apilog: schema registry at ${url(proxy)} refused`)).toBe(true);
      expect(last).toMatch(expected);
      expectNoSecret(consume.stderr, consume.stdout);
    });
  }

  it('a certificate from a CA the client was not given: one line that says so and names the option', async () => {
    const { args } = cli(proxy.basicUrl, {});
    const produce = await run([...APILOG, 'produce', ...args, '--topic', uniqueName('it-reg-untrusted'), '--count', '1'], {
      timeoutMs: 40_000, env: { SCHEMA_REGISTRY_USERNAME: USERNAME, SCHEMA_REGISTRY_PASSWORD: PASSWORD },
    });
    expect(produce.code).toBe(78);
    expect(produce.stderr.trim().split('\n')).toEqual([
      expect.stringMatching(
        new RegExp(`^apilog: schema registry at ${proxy.basicUrl.replace(/[.]/g, '\\.')}: its TLS certificate is not trusted \\([A-Z_]+\\): pass the CA that signed it with --registry-ca \\(or SCHEMA_REGISTRY_CA\\)$`),
      ),
    ]);
    expectNoSecret(produce.stderr);
  });
});
