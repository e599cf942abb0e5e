/**
 * The consumer group: fetch → decode → rows → insert into ClickHouse → commit offsets.
 *
 * Order per partition batch: (1) decode every message, (2) insert the rows and send the dead letters,
 * (3) only then commit the next offset to Kafka. A crash before (3) re-delivers the batch; the
 * exactly-once issue closes that window with the `_partition`/`_offset` columns every row carries.
 */
import type { Consumer, EachBatchPayload, Kafka } from 'kafkajs';
import type { Logger } from '../runtime/log.ts';
import type { SchemaRegistryClient } from '../schemas/registry.ts';
import { DecodeError } from '../runtime/errors.ts';
import { DeadLetterWriter, type DeadLetter } from './deadLetters.ts';
import { decodeMessage, prefetchSchemas } from './decoder.ts';
import { RowWriter } from './rowWriter.ts';
import type { Sink } from './sink.ts';

export interface ApiCallConsumerOptions {
  readonly kafka: Kafka;
  readonly registry: SchemaRegistryClient;
  readonly sink: Sink;
  readonly topic: string;
  readonly groupId: string;
  readonly table: string;
  readonly deadLetterTopic: string;
  readonly logger: Logger;
  /** Where a group with no committed offset starts. @default true */
  readonly fromBeginning?: boolean;
}

export interface ConsumerStats {
  rows: number;
  batches: number;
  deadLetters: number;
}

export class ApiCallConsumer {
  readonly stats: ConsumerStats = { rows: 0, batches: 0, deadLetters: 0 };
  private readonly consumer: Consumer;
  private readonly deadLetters: DeadLetterWriter;
  private writer: RowWriter | undefined;

  constructor(private readonly options: ApiCallConsumerOptions) {
    this.consumer = options.kafka.consumer({ groupId: options.groupId, allowAutoTopicCreation: false });
    this.deadLetters = new DeadLetterWriter(options.kafka, options.deadLetterTopic);
  }

  async start(): Promise<void> {
    this.writer = new RowWriter({ columns: await this.options.sink.describe(this.options.table) });
    await this.consumer.connect();
    await this.consumer.subscribe({ topics: [this.options.topic], fromBeginning: this.options.fromBeginning ?? true });
    await this.consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: 1,
      eachBatch: (payload) => this.onBatch(payload),
    });
  }

  private async onBatch({ batch, resolveOffset, heartbeat, isRunning, isStale }: EachBatchPayload): Promise<void> {
    if (batch.isEmpty() || !isRunning() || isStale()) return;
    const writer = this.writer!;
    const { registry, sink, table, logger } = this.options;
    await prefetchSchemas(batch.messages, registry);
    const letters: DeadLetter[] = [];
    for (const message of batch.messages) {
      const result = decodeMessage(message, registry);
      try {
        if (result.kind === 'error') throw result.error;
        writer.append(result.record, batch.topic, batch.partition, message.offset);
      } catch (error) {
        if (!(error instanceof DecodeError)) throw error;
        letters.push({ topic: batch.topic, partition: batch.partition, offset: message.offset, key: message.key, value: message.value, error });
      }
    }
    const rows = writer.rowCount;
    const body = writer.take();
    const started = performance.now();
    if (rows > 0) await sink.insertJsonEachRow(table, body);
    await this.deadLetters.send(letters);
    const last = batch.lastOffset();
    await this.consumer.commitOffsets([{ topic: batch.topic, partition: batch.partition, offset: (BigInt(last) + 1n).toString() }]);
    resolveOffset(last);
    this.stats.rows += rows;
    this.stats.batches += 1;
    this.stats.deadLetters += letters.length;
    logger.debug(
      { batch: `${batch.topic}:${batch.partition}:${batch.firstOffset()}-${last}`, rows, deadLetters: letters.length, ms: performance.now() - started },
      'batch written',
    );
    if (letters.length > 0) {
      logger.warn({ count: letters.length, reason: letters[0]!.error.reason, example: letters[0]!.error.message }, 'records dead-lettered');
    }
    await heartbeat();
  }

  async stop(): Promise<void> {
    await this.consumer.disconnect();
    await this.deadLetters.close();
  }
}
