/**
 * Configuration as daemons take it (cli/config.ts), on the real command definitions: a value comes from the flag,
 * else the environment, else the config file, else the default; every flag has a variable and a file key; a bad
 * file or variable is one ConfigError naming the line and key, or the variable. Exit codes by kind (exitCodes.ts).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CommanderError, type Command } from 'commander';
import { afterAll, describe, expect, test } from 'vitest';
import { buildProgram, fullProgram } from '../../cli/commands.ts';
import { configurableOptions, environmentNameOf } from '../../cli/config.ts';
import { interpolate, readConfigFile } from '../../cli/configFile.ts';
import { EXIT, exitCodeFor } from '../../cli/exitCodes.ts';
import { ConfigError, UnreachableError } from '../../runtime/errors.ts';
import { SchemaRefusedError } from '../../schemas/registry.ts';

const dir = mkdtempSync(join(tmpdir(), 'apilog-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let files = 0;
function configFile(text: string, extension = 'yaml'): string {
  const path = join(dir, `config-${files++}.${extension}`);
  writeFileSync(path, text);
  return path;
}

/** The options a subcommand's action would receive for `args` under `env`; the action itself does not run. */
async function optionsOf(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Record<string, unknown>> {
  const program = await buildProgram(args, env);
  let leaf: Command = program.commands.find((c) => c.name() === args[0])!;
  for (const name of args.slice(1)) leaf = leaf.commands.find((c) => c.name() === name) ?? leaf;
  let seen: Record<string, unknown> = {};
  leaf.action(function (this: Command) {
    seen = this.opts();
  });
  await program.parseAsync(args, { from: 'user' });
  return seen;
}

/** The ConfigError message of a rejected promise. */
async function configError(promise: Promise<unknown>): Promise<string> {
  const error = await promise.then(() => undefined, (e: unknown) => e);
  expect(error).toBeInstanceOf(ConfigError);
  return (error as Error).message;
}

// The first test imports every subcommand (a config file is checked against all of them): ~1.5 s alone.
describe('precedence: flag > environment > file > default', { timeout: 30_000 }, () => {
  const file = () => configFile(['table: top_table', 'batch-rows: 10', 'consume:', '  table: consume_table', '  create-table: true'].join('\n'));

  test('each source wins over the ones after it', async () => {
    const config = file();
    expect((await optionsOf(['consume']))['batchRows']).toBe(50_000);
    expect((await optionsOf(['consume', '--config', config]))['batchRows']).toBe(10);
    expect((await optionsOf(['consume', '--config', config], { APILOG_BATCH_ROWS: '20' }))['batchRows']).toBe(20);
    expect((await optionsOf(['consume', '--config', config, '--batch-rows', '30'], { APILOG_BATCH_ROWS: '20' }))['batchRows']).toBe(30);
  });

  test('the config file from APILOG_CONFIG; a command section wins over the top level; an empty variable is unset', async () => {
    const env = { APILOG_CONFIG: file(), APILOG_TABLE: '' };
    expect(await optionsOf(['consume'], env)).toMatchObject({ table: 'consume_table', createTable: true, batchRows: 10 });
    expect(await optionsOf(['migrate'], env)).toMatchObject({ table: 'top_table' });
  });

  test('established variable names, booleans, lists and repeatable flags', async () => {
    expect(await optionsOf(['consume'], { KAFKA_BROKERS: 'k1:9092,k2:9092', SCHEMA_REGISTRY_CA: '/ca.pem', APILOG_CREATE_TABLE: 'false', APILOG_KAFKA_TLS: 'yes' }))
      .toMatchObject({ brokers: 'k1:9092,k2:9092', registryCa: '/ca.pem', createTable: false, kafkaTls: true });
    const config = configFile(['brokers: [k1:9092, k2:9092]', 'query:', '  param: [a=1, b=2]', '  format: json'].join('\n'));
    expect(await optionsOf(['query', 'SELECT 1', '--config', config])).toMatchObject({ brokers: 'k1:9092,k2:9092', param: ['a=1', 'b=2'], format: 'json' });
    expect(await optionsOf(['schemas', 'check', '--config', configFile('schemas:\n  check:\n    offline: true\n')])).toMatchObject({ offline: true });
  });

  test('a value from the environment goes through the flag\'s own parser', async () => {
    expect(await configError(optionsOf(['consume'], { APILOG_BATCH_ROWS: 'many' }))).toBe('APILOG_BATCH_ROWS="many" (for --batch-rows): expected a positive integer');
    expect(await configError(optionsOf(['consume'], { APILOG_ROW_FORMAT: 'CSV' }))).toMatch(/^APILOG_ROW_FORMAT="CSV" \(for --row-format\): Allowed choices are RowBinary/);
    expect(await configError(optionsOf(['consume'], { APILOG_CREATE_TABLE: 'maybe' }))).toBe('APILOG_CREATE_TABLE="maybe" (for --create-table): expected true or false');
    expect(await configError(optionsOf(['consume'], { KAFKA_BROKERS: 'kafka' }))).toMatch(/^KAFKA_BROKERS="kafka" \(for --brokers\): expected host:port/);
    // A URL's password is not shown.
    expect(await configError(optionsOf(['consume'], { SCHEMA_REGISTRY_URL: 'https://apilog:s3cr3t@registry :8081' })))
      .toBe('SCHEMA_REGISTRY_URL="https://apilog:***@registry :8081" (for --registry): expected an http:// or https:// URL');
  });
});

describe('every flag', { timeout: 30_000 }, () => {
  test('has one variable per command, none taken by a setting that is not a flag', async () => {
    const notFlags = ['APILOG_CONFIG', 'APILOG_LOG_LEVEL', 'APILOG_DEBUG', 'APILOG_INGEST_TOKEN', 'APILOG_STACK_DIR', 'APILOG_CACHE_DIR',
      'KAFKA_SASL_PASSWORD', 'CLICKHOUSE_USER', 'CLICKHOUSE_PASSWORD', 'SCHEMA_REGISTRY_USERNAME', 'SCHEMA_REGISTRY_PASSWORD', 'SCHEMA_REGISTRY_TOKEN'];
    const walk = (command: Command): Command[] => [command, ...command.commands.flatMap(walk)];
    let flags = 0;
    for (const command of walk(await fullProgram())) {
      const names = configurableOptions(command).map(environmentNameOf);
      flags += names.length;
      expect(new Set(names).size, command.name()).toBe(names.length);
      expect(names.filter((n) => notFlags.includes(n)), command.name()).toEqual([]);
    }
    expect(flags).toBeGreaterThan(80);
  });

  test('--help names its variable', async () => {
    const program = await buildProgram(['consume']);
    const help = program.commands.find((c) => c.name() === 'consume')!.helpInformation();
    expect(help).toContain('[env APILOG_BATCH_ROWS]');
    expect(help).toContain('[env KAFKA_BROKERS]');
    expect(help).toContain('[env APILOG_CONFIG]');
    expect(help).not.toContain('APILOG_CRASH_AT'); // hidden, crash tests only
  });
});

describe('config file errors name the line and the key', { timeout: 30_000 }, () => {
  test('every mistake of a file, in line order, in one message', async () => {
    const config = configFile([
      'brokers: [127.0.0.1:9092]', //                          1
      'clickhouse: http://apilog:${APILOG_TEST_UNSET}@ch:8123', // 2
      'consume:', //                                            3
      '  batch-rows: -5', //                                    4
      '  batch-row: 3', //                                      5
      '  create-table: "yes"', //                               6
      'qurey:', //                                              7
      '  format: json', //                                      8
    ].join('\n'));
    expect(await configError(optionsOf(['consume', '--config', config]))).toBe(
      `config file ${config}: line 2: \${APILOG_TEST_UNSET} is not set in the environment; ` +
        'line 4, consume.batch-rows: expected a positive integer; line 5, consume.batch-row: unknown key; ' +
        'line 6, consume.create-table: Invalid input: expected boolean, received string; line 7, qurey: unknown key',
    );
  });

  test('a top-level value is checked for every command that takes it', async () => {
    const config = configFile('to: yesterday\n');
    expect(await configError(optionsOf(['consume', '--config', config]))).toBe(`config file ${config}: line 1, to: expected a positive integer (for migrate)`);
  });

  test('JSON, a syntax error, a missing file', async () => {
    const json = configFile('{\n  "migrate": {\n    "to": "x"\n  }\n}\n', 'json');
    expect(await configError(optionsOf(['migrate', '--config', json]))).toBe(`config file ${json}: line 3, migrate.to: expected a positive integer`);
    const broken = configFile('consume:\n  group: [a\n  table: b\n');
    expect(await configError(optionsOf(['consume', '--config', broken]))).toMatch(new RegExp(`^config file ${broken} line \\d: `));
    expect(await configError(optionsOf(['consume', '--config', join(dir, 'absent.yaml')]))).toMatch(/absent\.yaml: ENOENT/);
  });
});

describe('${NAME} in values', { timeout: 30_000 }, () => {
  test('replaced from the environment, with a fallback, or escaped; never in keys; a secret cannot change the structure', async () => {
    const missing: string[] = [];
    expect(interpolate('a ${X} b ${Y:-y} c $${Z} ${W}', { X: 'x' }, missing)).toBe('a x b y c ${Z} ${W}');
    expect(missing).toEqual(['W']);
    const secret = 'p4ss:w0rd#[not]{yaml}&';
    const config = configFile(['clickhouse: "http://apilog:${CH_PASSWORD}@ch:8123"', '${KEY}: 1'].join('\n'));
    expect(await configError(optionsOf(['migrate', '--config', config], { CH_PASSWORD: secret, KEY: 'table' }))).toBe(`config file ${config}: line 2, \${KEY}: unknown key`);
    const values = readConfigFile(configFile('clickhouse: "http://apilog:${CH_PASSWORD}@ch:8123"\n'), await fullProgram(), { CH_PASSWORD: secret });
    expect(values.get('migrate')?.get('clickhouse')).toBe(`http://apilog:${secret}@ch:8123`);
  });
});

describe('exit codes (sysexits)', () => {
  test.each([
    ['a configuration error', new ConfigError('x'), EXIT.config, 78],
    ['a schema the registry refuses', new SchemaRefusedError('t-value', 'x'), EXIT.config, 78],
    ['an unreachable service', new UnreachableError('Kafka', 'k:9092', 'refused'), EXIT.unavailable, 69],
    ['a fatal error at run time', new Error('bug'), EXIT.software, 70],
    ['a usage error', new CommanderError(1, 'commander.unknownOption', 'x'), EXIT.usage, 64],
    ['help or version shown', new CommanderError(0, 'commander.version', '0.1.0'), EXIT.ok, 0],
  ])('%s', (_what, error, code, value) => {
    expect(exitCodeFor(error)).toBe(code);
    expect(code).toBe(value);
  });

  test('usage errors are thrown as CommanderError, not exited on', async () => {
    const program = await buildProgram(['consume']);
    program.configureOutput({ writeErr: () => undefined, outputError: () => undefined });
    for (const command of program.commands) command.configureOutput({ writeErr: () => undefined, outputError: () => undefined });
    const error = await program.parseAsync(['consume', '--bogus'], { from: 'user' }).then(() => undefined, (e: unknown) => e);
    expect(error).toBeInstanceOf(CommanderError);
    expect(exitCodeFor(error)).toBe(64);
  });
});
