/**
 * Records that cannot be decoded or do not fit the table go to a dead-letter topic, unchanged, with headers
 * naming the reason and where they came from. The consumer commits past them only after this send is acknowledged.
 */
import type { Kafka, Message, Producer } from 'kafkajs';
import type { DecodeError } from '../runtime/errors.ts';
import type { RowLayout } from './sink.ts';

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
    await this.producer.send({ topic: this.topic, acks: -1, messages });
  }

  async close(): Promise<void> {
    if (this.connected) await this.producer.disconnect();
    this.connected = false;
  }
}
