/**
 * The secured stack end to end (integration; stack/secureStack.ts, `npm run stack -- up --secure`): Kafka with a
 * SASL_SSL listener (SCRAM-SHA-512, certificate from our openssl CA, stores made with openssl and keytool), the
 * registry behind TLS and basic auth (Debian's nginx in front of the shared registry, to spare the two cores a third
 * JVM; `up --secure` starts a registry of its own), ClickHouse 18.16 over HTTPS with a password user.
 *
 * `apilog produce` → `apilog consume` → `apilog query` through all of it, every secret from the environment; then
 * each wrong credential ends `apilog consume` at once with one line naming the component. No secret appears in any
 * command's output, in the consumer's process title, or in the servers' logs.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LOG_DIR } from '../../stack/services.ts';
import { SECURE_DIR, type SecureStack } from '../../stack/secureStack.ts';
import { downSecure, upSecure } from '../../stack/stack.ts';
import { stack, uniqueName } from './pipeline.ts';
import { APILOG, run, start, waitFor } from './processes.ts';

describe('the secured stack: SASL_SSL Kafka, registry behind TLS and auth, ClickHouse over HTTPS (integration)', () => {
  let secure: SecureStack;
  let secrets: string[];
  beforeAll(async () => {
    secure = await upSecure({ registryUpstream: new URL(stack().registry).host, verbose: false });
    const c = secure.credentials;
    secrets = [c.kafka.password, c.kafkaBroker.password, c.storePassword, c.registry.password, c.registryToken, c.clickhouse.password];
  }, 240_000);
  // The broker's JVM is not left running: the machine's two cores are shared.
  afterAll(() => downSecure(false), 60_000);

  /** The flags and environment of a command against the secured stack; `wrong` replaces one credential. */
  const target = (wrong: Record<string, string> = {}) => {
    const c = secure.credentials;
    const ca = secure.certificates.caCert;
    return {
      flags: ['--brokers', secure.endpoints.brokers, '--registry', secure.endpoints.registryBasic, '--clickhouse', secure.endpoints.clickhouse,
        '--kafka-sasl', 'scram-sha-512', '--kafka-ca', ca, '--registry-ca', ca, '--clickhouse-ca', ca],
      env: {
        KAFKA_SASL_USERNAME: c.kafka.username, KAFKA_SASL_PASSWORD: c.kafka.password,
        SCHEMA_REGISTRY_USERNAME: c.registry.username, SCHEMA_REGISTRY_PASSWORD: c.registry.password,
        CLICKHOUSE_USER: c.clickhouse.username, CLICKHOUSE_PASSWORD: c.clickhouse.password,
        APILOG_LOG_LEVEL: 'info', ...wrong,
      },
    };
  };
  const expectNoSecret = (...texts: string[]) => {
    for (const text of texts) for (const secret of secrets) expect(text.includes(secret), 'a secret in output or logs').toBe(false);
  };

  it('produce → consume → query through all of it; no secret in output, process title or server logs', async () => {
    const topic = uniqueName('it-secure');
    const table = uniqueName('secure');
    const { flags, env } = target();
    const produce = await run([...APILOG, 'produce', ...flags, '--topic', topic, '--count', '3000', '--rate', '0', '--partitions', '3', '--compression', 'zstd'], { timeoutMs: 90_000, env });
    expect(produce.code).toBe(0);
    expect(JSON.parse(produce.stdout.trim().split('\n').at(-1)!)).toMatchObject({ events: 3000, sent: 3000, dropped: 0, rejected: 0 });

    const consume = start([...APILOG, 'consume', ...flags, '--topic', topic, '--table', table, '--group', uniqueName('group'), '--create-table',
      '--metrics-port', '0', '--batch-age-ms', '200'], { env });
    let title = '';
    const queries: string[] = [];
    const count = async () => {
      const q = await run([...APILOG, 'query', '--clickhouse', secure.endpoints.clickhouse, '--clickhouse-ca', secure.certificates.caCert, '--format', 'json',
        `SELECT count() AS n, uniqExact(event_id) AS u FROM ${table}`], { env });
      queries.push(q.stdout, q.stderr);
      return q.code === 0 ? (JSON.parse(q.stdout) as { n: string | number; u: string | number }) : undefined;
    };
    try {
      expect(await waitFor(async () => {
        if (title === '' && consume.process.pid !== undefined) title = readFileSync(`/proc/${consume.process.pid}/cmdline`, 'utf8');
        return consume.process.exitCode !== null || Number((await count())?.n ?? 0) >= 3000;
      }, 90_000)).toBe(true);
      expect(await consume.stop(20_000)).toBe(0);
    } finally {
      if (consume.process.exitCode === null) consume.process.kill('SIGKILL');
    }
    const final = await count();
    expect(final && [Number(final.n), Number(final.u)]).toEqual([3000, 3000]);
    expect(consume.stderr()).toContain('"outcome":"clean"');

    const serverLogs = readdirSync(LOG_DIR).filter((f) => /secure/.test(f)).map((f) => readFileSync(join(LOG_DIR, f), 'utf8'));
    const proxyLog = readFileSync(join(secure.proxy.marker, '..', 'error.log'), 'utf8');
    expect(serverLogs.length).toBeGreaterThanOrEqual(2);
    expectNoSecret(produce.stdout, produce.stderr, consume.stdout(), consume.stderr(), title, proxyLog, ...queries, ...serverLogs);
    // The credentials live in files only the owner reads.
    expect(readFileSync(join(SECURE_DIR, 'env'), 'utf8')).toContain('KAFKA_SASL_PASSWORD=');
  });

  const wrongs: [string, Record<string, string>, RegExp][] = [
    ['Kafka', { KAFKA_SASL_PASSWORD: 'wrong-kafka-password' }, /^apilog: Kafka at 127\.0\.0\.1:49092 refused this client's TLS\/SASL settings: .*SASL.*$/],
    ['the schema registry', { SCHEMA_REGISTRY_PASSWORD: 'wrong-registry-password' }, /^apilog: schema registry at https:\/\/127\.0\.0\.1:48443\/apis\/ccompat\/v7 refused the credentials \(HTTP 401\): .+$/],
    ['ClickHouse', { CLICKHOUSE_PASSWORD: 'wrong-clickhouse-password' }, /^apilog: ClickHouse at https:\/\/127\.0\.0\.1:48124 refused the credentials \(code 193\): set CLICKHOUSE_USER and CLICKHOUSE_PASSWORD$/],
  ];
  for (const [component, wrong, expected] of wrongs) {
    it(`a wrong password for ${component}: consume ends at once with one line naming it, exit 78, no retry loop, no secret`, async () => {
      const { flags, env } = target(wrong);
      const consume = await run([...APILOG, 'consume', ...flags, '--topic', uniqueName('it-secure-wrong'), '--metrics-port', '0'], { timeoutMs: 40_000, env });
      expect(consume.code).toBe(78);
      expect(consume.ms).toBeLessThan(20_000);
      expect(consume.stderr).not.toContain('waiting for the services');
      expect(consume.stderr.trim().split('\n').at(-1)).toMatch(expected);
      expectNoSecret(consume.stderr, consume.stdout);
      for (const value of Object.values(wrong)) expect(consume.stderr).not.toContain(value);
    });
  }

  it('a broker certificate from a CA the client was not given: one line that names Kafka, exit 78, not a wait', async () => {
    const { flags, env } = target();
    const withoutCa = flags.filter((f, i) => f !== '--kafka-ca' && flags[i - 1] !== '--kafka-ca');
    const consume = await run([...APILOG, 'consume', ...withoutCa, '--kafka-tls', '--topic', uniqueName('it-secure-ca'), '--metrics-port', '0'], { timeoutMs: 40_000, env });
    expect(consume.code).toBe(78);
    expect(consume.stderr).not.toContain('waiting for the services');
    expect(consume.stderr.trim().split('\n').at(-1)).toMatch(/^apilog: Kafka at 127\.0\.0\.1:49092 refused this client's TLS\/SASL settings: .*certificate.*$/);
  });
});
