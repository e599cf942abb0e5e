/**
 * The command line loads only what it uses: `apilog --help` defines every subcommand by name and summary without
 * importing its module; the subcommand that runs is defined in full from its own module; a server URL never loads
 * the embedded engine. Which packages a fresh process loaded: the CommonJS ones from Node's module cache, the ES
 * modules (zod, for one) from a resolve hook that notes every import.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { describe, expect, test } from 'vitest';
import { SUBCOMMANDS, subcommandOf } from '../../cli/commands.ts';
import { PROJECT_ROOT } from '../../stack/endpoints.ts';

/** The packages a fresh Node process has loaded after running `body` (an ES module body, tsx loaded). */
function packagesLoadedBy(body: string): string[] {
  const dir = mkdtempSync(join(tmpdir(), 'apilog-imports-'));
  const imports = join(dir, 'imports');
  const hook = `import { appendFileSync } from 'node:fs';
    export async function resolve(specifier, context, next) {
      const resolved = await next(specifier, context);
      appendFileSync(${JSON.stringify(imports)}, resolved.url + '\\n');
      return resolved;
    }`;
  const script = `
    import { createRequire, register } from 'node:module';
    register('data:text/javascript,' + encodeURIComponent(${JSON.stringify(hook)}));
    ${body}
    process.stdout.write(JSON.stringify(Object.keys(createRequire(import.meta.url).cache)));`;
  try {
    const required = JSON.parse(execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: PROJECT_ROOT, encoding: 'utf8' })) as string[];
    const imported = readFileSync(imports, 'utf8').split('\n');
    const names = [...required, ...imported].map((p) => /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(p)?.[1]).filter((n) => n !== undefined);
    return [...new Set(names)].sort();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const HEAVY = ['chdb', '@chdb/lib-linux-x64-gnu', '@clickhouse/client', 'kafkajs', 'undici', 'pino', 'prom-client', 'avsc', 'zod', 'yaml'];

// Fresh processes and first imports of the subcommands: ~1-2 s each alone, more when the 2 cores are busy.
describe('apilog loads what it uses', { timeout: 30_000 }, () => {
  test('--help loads commander and none of the pipeline\'s packages', () => {
    const loaded = packagesLoadedBy(`const { buildProgram } = await import('./cli/commands.ts'); await buildProgram(['--help']);`);
    expect(loaded).toContain('commander');
    expect(loaded.filter((name) => HEAVY.includes(name))).toEqual([]);
  });

  test('consume against a ClickHouse server loads Kafka and the server client, not the embedded engine', () => {
    const loaded = packagesLoadedBy(`
      const { buildProgram } = await import('./cli/commands.ts');
      await buildProgram(['consume', '--clickhouse', 'http://127.0.0.1:8123']);
      const { openSink } = await import('./clickhouse/openSink.ts');
      await (await openSink('http://127.0.0.1:8123')).close();`);
    expect(loaded).toEqual(expect.arrayContaining(['kafkajs', '@clickhouse/client']));
    expect(loaded.filter((name) => name === 'chdb' || name.startsWith('@chdb/'))).toEqual([]);
  });
});

describe('subcommands', { timeout: 30_000 }, () => {
  test.each(Object.entries(SUBCOMMANDS))('%s: its module defines that one command, with the summary --help shows', async (name, subcommand) => {
    const program = new Command('apilog');
    (await subcommand.load())(program);
    expect(program.commands.map((c) => c.name())).toEqual([name]);
    expect(program.commands[0]!.description()).toBe(subcommand.summary);
  });

  test('every cli/ module that registers a command is listed', () => {
    const registering = readdirSync(join(PROJECT_ROOT, 'cli'))
      .filter((f) => /export function register[A-Z]/.test(readFileSync(join(PROJECT_ROOT, 'cli', f), 'utf8')))
      .map((f) => f.replace(/\.ts$/, ''))
      .sort();
    expect(registering).toEqual(Object.keys(SUBCOMMANDS).sort());
  });

  test.each([
    [['--help'], undefined],
    [['consume', '--group', 'g'], 'consume'],
    [['--version'], undefined],
    [['help', 'query'], 'query'],
    [['query', 'SELECT 1'], 'query'],
  ])('subcommandOf(%j) is %s', (args, expected) => {
    expect(subcommandOf(args)).toBe(expected);
  });
});
