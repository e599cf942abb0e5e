/**
 * The worker thread behind `createApiLogger({ worker: true })` (workerProducer.ts is the other side): it owns the
 * kafkajs producer, so that kafkajs's record encoding, compression and network I/O run off the thread that calls
 * log(). Messages arrive already encoded (Avro in the Confluent framing) and partitioned, a batch's values in one
 * transferred buffer; the worker sends each as the logger's own producer would (idempotent, acks from all in-sync
 * replicas, one request per partition) and answers with the outcome. Retries, backoff, spooling and counting stay
 * with the logger on the calling thread.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { CompressionTypes, Message } from 'kafkajs';
import { createKafka } from '../runtime/kafka.ts';
import type { Logger } from '../runtime/log.ts';
import { PRODUCER_DELIVERY } from './apiCallProducer.ts';
import { serializeError, TurnBatch, type FromSendWorker, type SendWorkerInit, type ToSendWorker } from './workerProducer.ts';

const init = workerData as SendWorkerInit;
const port = parentPort!;

type Level = 'error' | 'warn' | 'info' | 'debug';
/** Answers and log lines for the other thread, posted together at the end of this turn of the event loop. */
const outbox = new TurnBatch<FromSendWorker>((answers) => port.postMessage(answers));
const answer = (m: FromSendWorker) => outbox.push(m);
const forward = (level: Level, obj: Record<string, unknown>, msg: string) => answer({ op: 'log', level, obj: plain(obj), msg });
const kafka = createKafka({
  brokers: init.brokers,
  clientId: init.clientId,
  connectionTimeoutMs: init.connectionTimeoutMs,
  retries: 0,
  onSendFailure: (retryCount) => answer({ op: 'sendFailure', retryCount }),
  ...(init.logLevel !== undefined ? { logger: workerLogger(init.logLevel) } : {}),
});
const producer = kafka.producer({ ...PRODUCER_DELIVERY, retry: { retries: init.sendRetries, initialRetryTime: 100, maxRetryTime: 100 } });

/** kafkajs's log lines, sent to the logger of the calling thread (at its level). */
function workerLogger(level: string): Logger {
  const emit = (l: Level) => (a: unknown, b?: string) => (typeof a === 'string' ? forward(l, {}, a) : forward(l, (a ?? {}) as Record<string, unknown>, b ?? ''));
  return { level, error: emit('error'), warn: emit('warn'), info: emit('info'), debug: emit('debug') } as unknown as Logger;
}

/** A log line's fields as they can cross to the other thread (errors and anything else not cloneable as text). */
function plain(obj: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(obj)) out[k] = v === null || typeof v !== 'object' ? v : v instanceof Error ? serializeError(v) : JSON.parse(JSON.stringify(v) ?? 'null');
  return out;
}

/** Connected once; a send connects first (a worker started again after the last one died has not been told to). */
let ready: Promise<void> | undefined;
const connected = (): Promise<void> =>
  (ready ??= producer.connect().catch((error: unknown) => {
    ready = undefined;
    throw error;
  }));

async function handle(m: ToSendWorker): Promise<void> {
  switch (m.op) {
    case 'connect':
      return connected();
    case 'disconnect':
      return producer.disconnect();
    case 'send': {
      await connected();
      const values = Buffer.from(m.values);
      const messages: Message[] = new Array(m.ends.length);
      let start = 0;
      for (let i = 0; i < m.ends.length; i++) {
        const end = m.ends[i]!;
        const k = m.keyIndex[i]!;
        messages[i] = { key: k < 0 ? null : m.keyTable[k]!, value: values.subarray(start, end), partition: m.partitions[i]! };
        start = end;
      }
      await producer.send({ topic: m.topic, acks: -1, compression: m.compression as CompressionTypes, messages });
      return;
    }
  }
}

// The calls of one turn of the other thread's event loop arrive together (workerProducer.ts); each is answered alone.
port.on('message', (calls: ToSendWorker[]) => {
  for (const m of calls) {
    handle(m).then(
      () => answer({ op: 'done', id: m.id }),
      (error: unknown) => answer({ op: 'failed', id: m.id, error: serializeError(error) }),
    );
  }
});
