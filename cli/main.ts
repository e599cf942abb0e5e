/**
 * apilog's command line. Every subcommand takes --brokers, --registry, --clickhouse and --topic (see endpoints.ts).
 * Errors end the command with one line on stderr: `apilog: <what failed>`.
 */
import { Command } from 'commander';
import { ApilogError, describeError } from '../runtime/errors.ts';
import { registerConsume } from './consume.ts';
import { registerDemo } from './demo.ts';
import { registerIngest } from './ingest.ts';
import { registerMigrate } from './migrate.ts';
import { registerProduce } from './produce.ts';
import { registerQuery } from './query.ts';
import { registerSchemas } from './schemas.ts';
import { registerStatus } from './status.ts';

const program = new Command('apilog')
  .description('API-call logs: Avro events through Kafka into ClickHouse, exactly once')
  .showHelpAfterError()
  .configureOutput({ outputError: (text, write) => write(text) });

// One file per subcommand, each exporting register<Name>(program).
registerConsume(program);
registerDemo(program);
registerIngest(program);
registerMigrate(program);
registerProduce(program);
registerQuery(program);
registerSchemas(program);
registerStatus(program);

try {
  await program.parseAsync(process.argv);
} catch (error) {
  process.stderr.write(`apilog: ${describeError(error)}\n`);
  if (!(error instanceof ApilogError) && process.env['APILOG_DEBUG']) process.stderr.write(`${(error as Error).stack}\n`);
  // Exit now: a failed command may still hold sockets or servers open (kafkajs, the metrics server, chdb).
  process.exit(error instanceof ApilogError ? 2 : 1);
}
