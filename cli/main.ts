/**
 * apilog's command line. Every subcommand takes --brokers, --registry, --clickhouse and --topic (see endpoints.ts).
 * Errors end the command with one line on stderr: `apilog: <what failed>`.
 */
import { Command, InvalidArgumentError } from 'commander';
import { ApilogError, describeError } from '../runtime/errors.ts';
import { DEFAULT_TABLE } from '../consumer/apiCallsTable.ts';
import { resolveEndpoints, withEndpoints, type EndpointFlags } from './endpoints.ts';
import { runDemo } from './demo.ts';

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError('expected a positive integer');
  return n;
}

const program = new Command('apilog')
  .description('API-call logs: Avro events through Kafka into ClickHouse, exactly once')
  .showHelpAfterError()
  .configureOutput({ outputError: (text, write) => write(text) });

withEndpoints(program.command('demo'))
  .description('run the pipeline end to end on local defaults (starts the local stack if needed) and print what landed')
  .option('--count <n>', 'events to produce', positiveInt, 10_000)
  .option('--apis <n>', 'distinct API names', positiveInt, 12)
  .option('--partitions <n>', 'partitions of the topic when it is created', positiveInt, 6)
  .option('--table <name>', 'ClickHouse table', DEFAULT_TABLE)
  .option('--timeout <seconds>', 'give up waiting for rows after this long', positiveInt, 120)
  .action(async (opts: EndpointFlags & { count: number; apis: number; partitions: number; table: string; timeout: number }) => {
    const result = await runDemo({
      endpoints: resolveEndpoints(opts),
      count: opts.count,
      apis: opts.apis,
      partitions: opts.partitions,
      table: opts.table,
      timeoutMs: opts.timeout * 1000,
    });
    process.stdout.write(`${JSON.stringify({ produced: result.produced, rows: result.rows })}\n`);
    process.exitCode = result.rows === result.produced ? 0 : 1;
  });

try {
  await program.parseAsync(process.argv);
} catch (error) {
  process.stderr.write(`apilog: ${describeError(error)}\n`);
  if (!(error instanceof ApilogError) && process.env['APILOG_DEBUG']) process.stderr.write(`${(error as Error).stack}\n`);
  process.exitCode = error instanceof ApilogError ? 2 : 1;
}
