/**
 * apilog's command line (bin/apilog.js runs it). Every subcommand takes --brokers, --registry, --clickhouse and
 * --topic (see endpoints.ts); commands.ts lists them, config.ts fills what the command line leaves unset from the
 * environment and a config file. Errors end the command with one line on stderr, `apilog: <what failed>`, and the
 * exit code of their kind (exitCodes.ts).
 */
import { CommanderError } from 'commander';
import { ApilogError, describeError } from '../runtime/errors.ts';
import { buildProgram } from './commands.ts';
import { exitCodeFor } from './exitCodes.ts';

try {
  const program = await buildProgram(process.argv.slice(2));
  await program.parseAsync(process.argv);
} catch (error) {
  // commander has already printed its own message (a usage error, or the help or version asked for).
  if (!(error instanceof CommanderError)) {
    process.stderr.write(`apilog: ${describeError(error)}\n`);
    if (!(error instanceof ApilogError) && process.env['APILOG_DEBUG']) process.stderr.write(`${(error as Error).stack}\n`);
  }
  // Exit now: a failed command may still hold sockets or servers open (kafkajs, the metrics server, chdb).
  process.exit(exitCodeFor(error));
}
