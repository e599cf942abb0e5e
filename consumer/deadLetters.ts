/**
 * Records that cannot be decoded or do not fit the table go to a dead-letter topic, unchanged, with headers
 * naming the reason and where they came from. The consumer commits past them only after this send is acknowledged.
 */
import type { Kafka, Message, Producer } from 'kafkajs';
import type { DecodeError } from '../runtime/errors.ts';
import type { RowLayout } from '../clickhouse/sink.ts';

export interface DeadLetter {
  readonly topic: string;
  readonly partition: number;
  readonly offset: string;
  readonly key: Buffer | null;
  readonly value: Buffer | null;
  readonly error: DecodeError;
  /**
   * Set when `value` is the row as sent to ClickHouse (it rejected the row) rather than the Kafka record: its format
   * and columns, written as headers `apilog.row.format` and `apilog.row.columns` so the bytes can be read.
   */
  readonly row?: RowLayout;
}

export const deadLetterTopicFor = (topic: string) => `${topic}.dead-letter`;

/** Bytes of letters sent in one request: well under the broker's default message.max.bytes (1 MiB). */
const DEAD_LETTER_CHUNK_BYTES = 512 * 1024;

/** About the bytes a letter takes in a record batch: key, value, headers and per-record overhead. */
function letterSize(message: Message): number {
  let size = 64 + (message.key?.length ?? 0) + (message.value?.length ?? 0);
  for (const [k, v] of Object.entries(message.headers ?? {})) size += k.length + (typeof v === 'string' ? Buffer.byteLength(v) : (v as Buffer | undefined)?.length ?? 0);
  return size;
}

export class DeadLetterWriter {
  private readonly producer: Producer;
  private connected = false;

  constructor(
    kafka: Kafka,
    readonly topic: string,
  ) {
    this.producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false });
  }

  async send(letters: readonly DeadLetter[]): Promise<void> {
    if (letters.length === 0) return;
    if (!this.connected) {
      await this.producer.connect();
      this.connected = true;
    }
    const messages: Message[] = letters.map((l) => ({
      key: l.key,
      value: l.value,
      headers: {
        'apilog.error.reason': l.error.reason,
        'apilog.error.message': l.error.message,
        'apilog.source.topic': l.topic,
        'apilog.source.partition': String(l.partition),
        'apilog.source.offset': l.offset,
        ...(l.row ? { 'apilog.row.format': l.row.format, 'apilog.row.columns': l.row.columns.join(',') } : {}),
      },
    }));
    // One record batch must stay under the broker's message.max.bytes (1 MiB by default): a batch that ClickHouse
    // rejected row by row can make thousands of letters. Sent in order, a chunk at a time.
    let chunk: Message[] = [];
    let bytes = 0;
    for (const message of messages) {
      const size = letterSize(message);
      if (chunk.length > 0 && bytes + size > DEAD_LETTER_CHUNK_BYTES) {
        await this.producer.send({ topic: this.topic, acks: -1, messages: chunk });
        chunk = [];
        bytes = 0;
      }
      chunk.push(message);
      bytes += size;
    }
    if (chunk.length > 0) await this.producer.send({ topic: this.topic, acks: -1, messages: chunk });
  }

  async close(): Promise<void> {
    if (this.connected) await this.producer.disconnect();
    this.connected = false;
  }
}
