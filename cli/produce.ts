/**
 * `apilog produce`: the load generator. Writes realistic synthetic API-call events (Zipf-skewed API popularity,
 * log-normal latencies, a few errors) through the SDK at a steady rate, with a progress line on stderr and a
 * summary; last line on stdout: {"events": N, "sent": S, "dropped": D, "rejected": R, "seconds": T, "eps": E}.
 */
import type { Command } from 'commander';
import { InvalidArgumentError } from 'commander';
import { createApiLogger } from '../producer/apiLogger.ts';
import { COMPRESSIONS, type CompressionName } from '../runtime/kafkaCodecs.ts';
import { SEND_LATENCY_BUCKETS } from '../producer/metrics.ts';
import { SyntheticEvents } from '../producer/syntheticEvents.ts';
import { ensureTopic } from '../producer/topic.ts';
import { createKafka } from '../runtime/kafka.ts';
import { createLogger } from '../runtime/log.ts';
import { nonNegativeInt, positiveInt } from './arguments.ts';
import { registryFor, resolveEndpoints, withEndpoints, type EndpointFlags } from './endpoints.ts';
import { kafkaSecurity, withKafkaSecurity, type SecurityFlags } from './kafkaSecurity.ts';
import { preflight } from './preflight.ts';


const compression = (value: string): CompressionName => {
  if (!(COMPRESSIONS as readonly string[]).includes(value)) throw new InvalidArgumentError(`expected one of ${COMPRESSIONS.join(', ')}`);
  return value as CompressionName;
};

interface ProduceFlags extends EndpointFlags, SecurityFlags {
  count: number;
  rate: number;
  apis: number;
  partitions: number;
  compression: CompressionName;
  seed: number;
  service: string;
  spool?: string;
}

function progress(done: number, total: number, sent: number, started: number): string {
  const width = 30;
  const filled = Math.round((done / total) * width);
  const seconds = (performance.now() - started) / 1000;
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total} logged, ${sent} acknowledged, ${Math.round(sent / Math.max(seconds, 1e-3))} ev/s`;
}

export function registerProduce(program: Command): void {
  withKafkaSecurity(withEndpoints(program.command('produce')))
    .description('generate realistic synthetic API-call events into Kafka through the SDK')
    .option('--count <n>', 'events to write', positiveInt, 100_000)
    .option('--rate <n>', 'events per second (0: as fast as the broker takes them)', nonNegativeInt, 1000)
    .option('--apis <n>', 'distinct API names (Zipf-skewed popularity)', positiveInt, 20)
    .option('--partitions <n>', 'partitions of the topic when it is created', positiveInt, 6)
    .option('--compression <codec>', `batch compression: ${COMPRESSIONS.join(', ')}`, compression, 'lz4' as CompressionName)
    .option('--seed <n>', 'random seed (same seed, same events)', nonNegativeInt, Date.now() % 2 ** 31)
    .option('--service <name>', 'service stamped on the events', 'loadgen')
    .option('--spool <dir>', 'spool directory for broker outages')
    .action(async (flags: ProduceFlags) => {
      const endpoints = resolveEndpoints(flags);
      const registry = registryFor(endpoints, flags);
      const target = { brokers: endpoints.brokers, ...kafkaSecurity(flags) };
      await preflight({ ...target, registry });
      const log = createLogger('apilog-produce');
      // The SDK's own connection timeout (apiLogger.ts), so broker outages look to it as they did.
      const kafka = createKafka({ ...target, clientId: 'apilog-produce', logger: log, connectionTimeoutMs: 3000 });
      await ensureTopic(kafka, {
        topic: endpoints.topic, partitions: flags.partitions,
      });
      const logger = await createApiLogger({
        kafka, registry, topic: endpoints.topic, compression: flags.compression, whenFull: 'wait',
        logger: log, ...(flags.spool ? { spool: { dir: flags.spool } } : {}),
      });
      const events = new SyntheticEvents({ apis: flags.apis, seed: flags.seed, service: flags.service, instance: `loadgen-${process.pid}` });
      const tty = process.stderr.isTTY;
      const started = performance.now();
      let logged = 0;
      let lastShown = 0;
      const show = (final = false) => {
        const line = progress(logged, flags.count, logger.metrics().sent, started);
        if (tty) process.stderr.write(`\r${line}${final ? '\n' : ''}`);
        else if (final || performance.now() - lastShown > 5000) process.stderr.write(`${line}\n`);
        lastShown = performance.now();
      };
      const ticker = setInterval(show, tty ? 200 : 1000);
      try {
        while (logged < flags.count) {
          // Paced in 10 ms steps; a full queue makes log() wait, which slows the loop to what the broker takes.
          const due = flags.rate === 0 ? flags.count : Math.floor(((performance.now() - started) / 1000) * flags.rate);
          const target = Math.min(flags.count, due, logged + 5000);
          for (; logged < target; logged++) {
            const outcome = logger.log(events.next());
            if (outcome !== true && outcome !== false) await outcome;
          }
          await new Promise((r) => (flags.rate === 0 ? setImmediate(r) : setTimeout(r, 10)));
        }
        await logger.flush();
      } finally {
        clearInterval(ticker);
      }
      const m = await logger.close();
      show(true);
      const seconds = (performance.now() - started) / 1000;
      const p = (q: number) => {
        // The bucket holding quantile q of batch send latencies (upper bound, ms).
        const total = m.sendLatency.count;
        let seen = 0;
        for (let i = 0; i < m.sendLatency.buckets.length; i++) {
          if ((seen += m.sendLatency.buckets[i]!) >= q * total) return (SEND_LATENCY_BUCKETS[i] ?? Infinity) * 1000;
        }
        return Infinity;
      };
      process.stderr.write(
        `logged ${logged} events to ${endpoints.topic} in ${seconds.toFixed(1)} s: ${m.sent} acknowledged in ${m.batches} batches, ` +
          `${m.dropped} dropped, ${m.rejected} rejected, ${m.retries} retries; batch send p50 <= ${p(0.5)} ms, p99 <= ${p(0.99)} ms\n`,
      );
      process.stdout.write(
        `${JSON.stringify({ events: logged, sent: m.sent, dropped: m.dropped, rejected: m.rejected, seconds: Number(seconds.toFixed(3)), eps: Math.round(m.sent / seconds) })}\n`,
      );
      process.exitCode = m.sent === logged ? 0 : 1;
    });
}
