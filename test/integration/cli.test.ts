/**
 * The command line as a user meets it: `apilog demo` end to end, and a bad endpoint giving one line that names
 * the component and its address within 30 seconds — not a hang, not a stack trace.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ClickHouseServerSink } from '../../clickhouse/serverSink.ts';
import { PROJECT_ROOT } from '../../stack/endpoints.ts';
import { stack, uniqueName } from './pipeline.ts';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

function apilog(args: string[], timeoutMs = 60_000, env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const child = spawn(process.execPath, [join(PROJECT_ROOT, 'bin', 'apilog.js'), ...args], {
      cwd: PROJECT_ROOT,
      env: { ...process.env, KAFKA_BROKERS: '', SCHEMA_REGISTRY_URL: '', CLICKHOUSE_URL: '', APILOG_TOPIC: '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`apilog ${args.join(' ')} did not finish within ${timeoutMs} ms\n${stdout}\n${stderr}`));
    }, timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, ms: Date.now() - started });
    });
  });
}

describe('apilog command line (integration)', () => {
  const dirs: string[] = [];
  afterAll(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it('--version prints the version; --help lists every subcommand; both from the built JavaScript', async () => {
    expect(existsSync(join(PROJECT_ROOT, 'dist', 'cli', 'main.js'))).toBe(true);
    const { version } = JSON.parse(readFileSync(join(PROJECT_ROOT, 'package.json'), 'utf8')) as { version: string };
    const v = await apilog(['--version']);
    expect(v).toMatchObject({ code: 0, stdout: `${version}\n`, stderr: '' });
    const help = await apilog(['--help']);
    expect(help.code).toBe(0);
    for (const name of ['consume', 'demo', 'ingest', 'migrate', 'produce', 'query', 'schemas']) expect(help.stdout).toMatch(new RegExp(`^  ${name} `, 'm'));
  });

  it('demo produces, consumes and prints per-API counts, then {"produced","rows"} as its last line', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'apilog-demo-'));
    dirs.push(dir);
    const s = stack();
    const run = await apilog(
      ['demo', '--count', '3000', '--brokers', s.brokers, '--registry', s.registry, '--clickhouse', dir, '--topic', uniqueName('it-demo')],
      120_000,
    );
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const lines = run.stdout.trim().split('\n');
    expect(JSON.parse(lines.at(-1)!)).toEqual({ produced: 3000, rows: 3000 });
    // The per-API table: its counts add up to what was produced.
    const tableRows = lines.filter((l) => /^[a-z]+\.[a-z_0-9]+\s+\d+\s+\d+\s+[\d.]+$/.test(l));
    expect(tableRows.length).toBeGreaterThan(5);
    const total = tableRows.reduce((sum, l) => sum + Number(l.split(/\s+/)[1]), 0);
    expect(total).toBe(3000);
  });

  it('an unknown flag is a usage error (exit 64); a bad config file a configuration error (exit 78) naming the line and key', async () => {
    const usage = await apilog(['consume', '--batch-rowz', '5']);
    expect(usage.code).toBe(64);
    expect(usage.stderr.split('\n')[0]).toBe("error: unknown option '--batch-rowz'");
    const dir = mkdtempSync(join(tmpdir(), 'apilog-config-'));
    dirs.push(dir);
    writeFileSync(join(dir, 'apilog.yaml'), 'consume:\n  group: g\n  batch-rows: lots\n');
    const config = await apilog(['consume', '--config', join(dir, 'apilog.yaml')]);
    expect(config).toMatchObject({ code: 78, stderr: `apilog: config file ${join(dir, 'apilog.yaml')}: line 3, consume.batch-rows: expected a positive integer\n` });
  });

  it('migrate takes its settings from a config file (${NAME} from the environment), the environment over it, a flag over both', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'apilog-config-'));
    dirs.push(dir);
    const file = join(dir, 'apilog.yaml');
    const [fromFile, fromEnv, fromFlag] = [uniqueName('cfg_file'), uniqueName('cfg_env'), uniqueName('cfg_flag')];
    writeFileSync(file, `clickhouse: \${APILOG_TEST_CLICKHOUSE}\nmigrate:\n  table: ${fromFile}\n`);
    const env = { APILOG_TEST_CLICKHOUSE: stack().clickhouse };
    expect((await apilog(['migrate', '--config', file], 40_000, env)).code).toBe(0);
    expect((await apilog(['migrate'], 40_000, { ...env, APILOG_CONFIG: file, APILOG_TABLE: fromEnv })).code).toBe(0);
    expect((await apilog(['migrate', '--config', file, '--table', fromFlag], 40_000, { ...env, APILOG_TABLE: fromEnv })).code).toBe(0);
    const sink = new ClickHouseServerSink({ url: stack().clickhouse });
    try {
      for (const table of [fromFile, fromEnv, fromFlag]) expect(await sink.query<{ result: number | string }>(`EXISTS TABLE ${table}`), table).toEqual([{ result: 1 }]);
    } finally {
      await sink.close();
    }
  });

  it('consume against a table that does not exist: one actionable line and exit 78 (configuration), not a hang', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'apilog-consume-'));
    dirs.push(dir);
    const s = stack();
    const run = await apilog(['consume', '--brokers', s.brokers, '--registry', s.registry, '--clickhouse', dir, '--metrics-port', '0'], 40_000);
    expect(run.code).toBe(78);
    expect(run.ms).toBeLessThan(30_000);
    expect(run.stderr.trim().split('\n').at(-1)).toMatch(/^apilog: table api_calls does not exist in ClickHouse at .+: run `apilog migrate` first, or pass --create-table$/);
  });

  it('consume with SASL against a broker without SASL: the preflight uses the SASL settings and stops at once, not a wait', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'apilog-consume-'));
    dirs.push(dir);
    const s = stack();
    const run = await apilog(
      ['consume', '--brokers', s.brokers, '--registry', s.registry, '--clickhouse', dir, '--metrics-port', '0', '--kafka-sasl', 'plain', '--kafka-sasl-username', 'apilog'],
      40_000,
      { KAFKA_SASL_PASSWORD: 'not-a-secret' },
    );
    expect(run.code).toBe(78);
    expect(run.ms).toBeLessThan(30_000);
    expect(run.stderr).not.toContain('waiting for the services');
    expect(run.stderr.trim().split('\n').at(-1)).toMatch(/^apilog: Kafka at 127\.0\.0\.1:\d+ refused this client's TLS\/SASL settings: .*SASL.*$/);
  });

  const badEndpoints: [string, string[], RegExp][] = [
    ['Kafka port closed', ['--brokers', '127.0.0.1:1'], /^apilog: cannot reach Kafka at 127\.0\.0\.1:1: .+$/],
    ['registry down', ['--registry', 'http://127.0.0.1:1/apis/ccompat/v7'], /^apilog: cannot reach schema registry at http:\/\/127\.0\.0\.1:1\/apis\/ccompat\/v7: .+$/],
    ['ClickHouse down', ['--clickhouse', 'http://127.0.0.1:1'], /^apilog: cannot reach ClickHouse at http:\/\/127\.0\.0\.1:1: .+$/],
  ];
  for (const [what, flags, expected] of badEndpoints) {
    it(`${what}: one line naming the component and address, exit 69 (unavailable), within 30 s`, async () => {
      const s = stack();
      const defaults = ['--brokers', s.brokers, '--registry', s.registry, '--clickhouse', s.clickhouse];
      // Later flags win in commander: the bad endpoint overrides the good default.
      const run = await apilog(['demo', ...defaults, ...flags, '--topic', uniqueName('it-bad')], 40_000);
      expect(run.ms).toBeLessThan(30_000);
      expect(run.code).toBe(69);
      const lines = run.stderr.trim().split('\n');
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(expected);
      expect(run.stderr).not.toMatch(/\n\s+at /);
    });
  }
});
