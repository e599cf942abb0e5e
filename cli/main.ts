/**
 * apilog's command line (bin/apilog.js runs it). Every subcommand takes --brokers, --registry, --clickhouse and
 * --topic (see endpoints.ts); commands.ts lists them. Errors end the command with one line on stderr:
 * `apilog: <what failed>`.
 */
import { ApilogError, describeError } from '../runtime/errors.ts';
import { buildProgram } from './commands.ts';

try {
  const program = await buildProgram(process.argv.slice(2));
  await program.parseAsync(process.argv);
} catch (error) {
  process.stderr.write(`apilog: ${describeError(error)}\n`);
  if (!(error instanceof ApilogError) && process.env['APILOG_DEBUG']) process.stderr.write(`${(error as Error).stack}\n`);
  // Exit now: a failed command may still hold sockets or servers open (kafkajs, the metrics server, chdb).
  process.exit(error instanceof ApilogError ? 2 : 1);
}
