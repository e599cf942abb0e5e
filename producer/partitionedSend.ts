/**
 * Sending with an idempotent kafkajs producer so that a partition leader's death never loses or doubles a message:
 * one `send()` per partition, all at once, and a batch sent again only for the partitions not yet acknowledged.
 *
 * Why not one `send()` for the batch: kafkajs 2.2.4's send covers every broker the batch goes to and, across its own
 * retry, keeps the brokers that answered. When a partition's leader dies and the partition moves to a broker that
 * had already answered, that partition's messages are never sent, yet `send()` resolves (kafkajs issue #1303, open;
 * measured on the local cluster: 3 of 8,000 events acknowledged to the SDK and not in the topic). And a send that
 * fails after some brokers answered leaves those partitions' sequence numbers advanced: sending the whole batch
 * again stores them twice. A one-partition send is one request to one leader: it lands whole, or kafkajs rolls the
 * partition's sequence numbers back and the same messages sent again carry the same numbers, so the broker drops a
 * copy it already has.
 *
 * Hot path: messages are grouped once per batch (one array per partition); `partition` is set on each message in
 * place, no copy per message per attempt.
 */
import type { Admin, CompressionTypes, Message, Producer } from 'kafkajs';
import { ApilogError } from '../runtime/errors.ts';

/** The partition count of a topic, read with an admin client and read again after `maxAgeMs`. */
export class PartitionCount {
  private count = 0;
  private readAt = 0;
  private reading: Promise<number> | undefined;

  constructor(
    private readonly admin: Admin,
    private readonly topic: string,
    /** As kafkajs's own metadata: a topic given more partitions is seen within this long. @default 60000 */
    private readonly maxAgeMs = 60_000,
  ) {}

  /** The count; the last one known when reading it again fails (a broker down), an error when none is known. */
  get(): Promise<number> {
    if (this.count > 0 && Date.now() - this.readAt < this.maxAgeMs) return Promise.resolve(this.count);
    this.reading ??= this.read().finally(() => {
      this.reading = undefined;
    });
    return this.reading;
  }

  private async read(): Promise<number> {
    try {
      const metadata = await this.admin.fetchTopicMetadata({ topics: [this.topic] });
      const n = metadata.topics[0]?.partitions.length ?? 0;
      if (n === 0) throw new ApilogError(`topic ${this.topic} has no partitions (yet)`, { retriable: true });
      this.count = n;
      this.readAt = Date.now();
      return n;
    } catch (error) {
      if (this.count > 0) return this.count;
      throw error instanceof ApilogError ? error : new ApilogError(`reading the partitions of ${this.topic}: ${String(error)}`, { retriable: true, cause: error });
    }
  }
}

/** A batch sent partition by partition: which partitions Kafka has acknowledged so far. */
export class PartitionedBatch<M extends Message> {
  private readonly byPartition = new Map<number, M[]>();
  private readonly acknowledged = new Set<number>();

  /** Groups `messages` by `partitionOf(message)`, which is also set as each message's `partition`. */
  constructor(messages: readonly M[], partitionOf: (message: M) => number) {
    for (const message of messages) {
      const p = partitionOf(message);
      message.partition = p;
      const list = this.byPartition.get(p);
      if (list === undefined) this.byPartition.set(p, [message]);
      else list.push(message);
    }
  }

  get complete(): boolean {
    return this.acknowledged.size === this.byPartition.size;
  }

  /** Messages of the partitions not acknowledged yet. */
  pending(): M[] {
    const out: M[] = [];
    for (const [p, list] of this.byPartition) if (!this.acknowledged.has(p)) out.push(...list);
    return out;
  }

  /**
   * Sends every partition not acknowledged yet, each in its own request, at once. Resolves when all are
   * acknowledged; otherwise rejects with the first failure, the acknowledged ones remembered: call again to send
   * the rest (the same messages: the broker drops what it already has).
   */
  async send(producer: Producer, topic: string, compression: CompressionTypes): Promise<void> {
    const partitions = [...this.byPartition].filter(([p]) => !this.acknowledged.has(p));
    const results = await Promise.allSettled(partitions.map(([, messages]) => producer.send({ topic, acks: -1, compression, messages })));
    let failure: unknown;
    results.forEach((result, i) => {
      if (result.status === 'fulfilled') this.acknowledged.add(partitions[i]![0]);
      else failure ??= result.reason;
    });
    if (failure !== undefined) throw failure;
  }
}

/** Broker answers that no retry can change: a batch that gets one is dropped (counted), not retried forever. */
const PERMANENT_BROKER_ERRORS = new Set([
  'MESSAGE_TOO_LARGE', 'RECORD_LIST_TOO_LARGE', 'INVALID_RECORD', 'CORRUPT_MESSAGE', 'UNSUPPORTED_COMPRESSION_TYPE',
  'UNSUPPORTED_FOR_MESSAGE_FORMAT', 'INVALID_REQUIRED_ACKS',
]);

/** The permanent broker error in `error` or its causes (kafkajs wraps the broker's answer), if any. */
export function permanentBrokerError(error: unknown): string | undefined {
  for (let e = error as { type?: unknown; cause?: unknown; originalError?: unknown } | undefined, depth = 0; e && depth < 5; depth++) {
    if (typeof e.type === 'string' && PERMANENT_BROKER_ERRORS.has(e.type)) return e.type;
    e = (e.cause ?? e.originalError) as typeof e;
  }
  return undefined;
}
