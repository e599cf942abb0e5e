/**
 * `apilog ingest`: the HTTP endpoint for services in other languages (see producer/ingest.ts for the protocol).
 * Runs until SIGINT/SIGTERM, then stops taking requests and flushes what it accepted.
 */
import type { Command } from 'commander';
import { createApiLogger } from '../producer/apiLogger.ts';
import { startIngestServer } from '../producer/ingest.ts';
import { ensureTopic, requireTopic } from '../producer/topic.ts';
import { createKafka } from '../runtime/kafka.ts';
import { createLogger } from '../runtime/log.ts';
import { ConfigError } from '../runtime/errors.ts';
import { positiveInt } from './arguments.ts';
import { registryFor, resolveEndpoints, withEndpoints, type EndpointFlags } from './endpoints.ts';
import { kafkaSecurity, withKafkaSecurity, type SecurityFlags } from './kafkaSecurity.ts';
import { preflight } from './preflight.ts';

interface IngestFlags extends EndpointFlags, SecurityFlags {
  port: number;
  host: string;
  maxBody: number;
  maxEvents: number;
  spool?: string;
  createTopic: boolean;
  partitions: number;
}

export function registerIngest(program: Command): void {
  withKafkaSecurity(withEndpoints(program.command('ingest')))
    .description('serve an HTTP endpoint that takes JSON batches of API-call events and produces them to Kafka')
    .option('--port <n>', 'port to listen on', positiveInt, 8088)
    .option('--host <address>', 'address to listen on', '127.0.0.1')
    .option('--max-body <bytes>', 'largest request body', positiveInt, 5 * 1024 * 1024)
    .option('--max-events <n>', 'most events per request', positiveInt, 10_000)
    .option('--spool <dir>', 'spool directory for broker outages')
    .option('--create-topic', 'create the topic if it does not exist (otherwise a missing topic stops ingest at start)', false)
    .option('--partitions <n>', 'partitions of the topic when --create-topic creates it', positiveInt, 6)
    .addHelpText('after', '\nSet APILOG_INGEST_TOKEN to require "Authorization: Bearer <token>".')
    .action(async (flags: IngestFlags) => {
      const endpoints = resolveEndpoints(flags);
      const token = process.env['APILOG_INGEST_TOKEN'];
      if (token !== undefined && token.length < 16) throw new ConfigError('APILOG_INGEST_TOKEN must be at least 16 characters');
      if (token === undefined && flags.host !== '127.0.0.1' && flags.host !== 'localhost') {
        process.stderr.write('apilog ingest: warning: listening beyond loopback without APILOG_INGEST_TOKEN\n');
      }
      const log = createLogger('apilog-ingest', process.env['APILOG_LOG_LEVEL'] ?? 'info');
      const registry = registryFor(endpoints, flags);
      const target = { brokers: endpoints.brokers, ...kafkaSecurity(flags) };
      await preflight({ ...target, registry });
      const kafka = createKafka({ ...target, clientId: 'apilog-ingest', logger: log, connectionTimeoutMs: 3000 });
      if (flags.createTopic) await ensureTopic(kafka, { topic: endpoints.topic, partitions: flags.partitions });
      else await requireTopic(kafka, endpoints.topic, endpoints.brokers.join(','));
      const logger = await createApiLogger({
        kafka, registry, topic: endpoints.topic, whenFull: 'wait', logger: log,
        ...(flags.spool ? { spool: { dir: flags.spool } } : {}),
      });
      const server = await startIngestServer({
        logger, port: flags.port, host: flags.host, maxBodyBytes: flags.maxBody, maxEvents: flags.maxEvents, log,
        ...(token !== undefined ? { token } : {}),
      });
      process.stderr.write(`apilog ingest: POST ${server.url}/v1/events -> ${endpoints.topic} (schema id ${logger.schemaId})\n`);
      await new Promise<void>((resolve) => {
        process.once('SIGINT', resolve);
        process.once('SIGTERM', resolve);
      });
      await server.close();
      const m = await logger.close();
      process.stderr.write(`apilog ingest: stopped; ${m.sent} events sent, ${m.dropped} dropped, ${m.rejected} rejected\n`);
    });
}
