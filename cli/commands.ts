/**
 * apilog's subcommands, and the program that holds them. A subcommand's module (and with it Kafka, ClickHouse or
 * the embedded engine) is imported only when that subcommand runs or its help is asked for: `apilog --help` and
 * `apilog --version` load commander and this file.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command } from 'commander';
import { PROJECT_ROOT } from '../stack/endpoints.ts';
import { applyConfiguration, CONFIG_ENVIRONMENT_NAME, optionDescriptionWithEnvironment } from './config.ts';

export interface Subcommand {
  /** The line `apilog --help` shows; the module's own description must be the same (test/unit/cliCommands.test.ts). */
  readonly summary: string;
  /** Imports the module that defines the subcommand (options and action) and returns its register function. */
  readonly load: () => Promise<(program: Command) => void>;
}

/** One entry per file of cli/ that exports a register<Name>(program), in the order `--help` lists them. */
export const SUBCOMMANDS: Readonly<Record<string, Subcommand>> = {
  consume: {
    summary: 'consume the topic into ClickHouse exactly once, as one member of a consumer group',
    load: async () => (await import('./consume.ts')).registerConsume,
  },
  demo: {
    summary: 'run the pipeline end to end on local defaults (starts the local stack if needed) and print what landed',
    load: async () => (await import('./demo.ts')).registerDemo,
  },
  ingest: {
    summary: 'serve an HTTP endpoint that takes JSON batches of API-call events and produces them to Kafka',
    load: async () => (await import('./ingest.ts')).registerIngest,
  },
  migrate: {
    summary: 'apply pending ClickHouse migrations (tables, rollups, new columns); safe to run again',
    load: async () => (await import('./migrate.ts')).registerMigrate,
  },
  produce: {
    summary: 'generate realistic synthetic API-call events into Kafka through the SDK',
    load: async () => (await import('./produce.ts')).registerProduce,
  },
  query: {
    summary: "run a query against ClickHouse and print a table; --named runs a question from the analysts' page (docs/queries.sql)",
    load: async () => (await import('./query.ts')).registerQuery,
  },
  schemas: {
    summary: 'the Avro contract (schemas/avro/api_call.v<N>.avsc)',
    load: async () => (await import('./schemas.ts')).registerSchemas,
  },
  status: {
    summary: "a consumer group's standing per partition: committed and end offsets, lag, batch in flight, rows and last insert in ClickHouse; dead letters",
    load: async () => (await import('./status.ts')).registerStatus,
  },
};

/** The subcommand an argument list runs: its first word that is not an option, or the word after `help`. */
export function subcommandOf(args: readonly string[]): string | undefined {
  const words = args.filter((a) => !a.startsWith('-'));
  return words[0] === 'help' ? words[1] : words[0];
}

/** The pipeline's version (the repository's package.json). */
export function version(): string {
  return (JSON.parse(readFileSync(join(PROJECT_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
}

/** A program with every subcommand defined in full: what a config file is checked against. */
export async function fullProgram(): Promise<Command> {
  const program = new Command('apilog');
  for (const subcommand of Object.values(SUBCOMMANDS)) (await subcommand.load())(program);
  return program;
}

/** The commands of a tree that run an action (those without subcommands of their own). */
function leaves(command: Command): Command[] {
  return command.commands.length === 0 ? [command] : command.commands.flatMap(leaves);
}

/**
 * The program, with the subcommand `args` runs defined in full and every other one as its name and summary only
 * (enough for `--help`, and for commander to suggest a name when a word is mistyped). Before the action, options
 * left unset on the command line are taken from the environment, then from the config file (config.ts).
 * Usage errors are thrown as CommanderError (exitCodes.ts), not exited on.
 */
export async function buildProgram(args: readonly string[], env: NodeJS.ProcessEnv = process.env): Promise<Command> {
  const program = new Command('apilog')
    .description('API-call logs: Avro events through Kafka into ClickHouse, exactly once')
    .version(version(), '-V, --version', 'print the version')
    .exitOverride()
    .showHelpAfterError()
    .configureHelp({ optionDescription: optionDescriptionWithEnvironment })
    .configureOutput({ outputError: (text, write) => write(text) });
  const chosen = subcommandOf(args);
  for (const [name, subcommand] of Object.entries(SUBCOMMANDS)) {
    if (name !== chosen) {
      program.command(name).description(subcommand.summary);
      continue;
    }
    (await subcommand.load())(program);
    for (const command of leaves(program.commands.at(-1)!)) {
      command.option('--config <file>', `a YAML or JSON file of option values (${CONFIG_ENVIRONMENT_NAME}); flags and the environment win over it`);
    }
  }
  program.hook('preAction', (_program, action) => applyConfiguration(action, fullProgram, env));
  return program;
}
