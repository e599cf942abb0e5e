/**
 * Writes API-call events to Kafka: Avro in the Confluent framing, schema registered once under
 * `<topic>-value`, key = API name (Java-compatible murmur2, as kafkajs's default partitioner), idempotent producer,
 * acks from all in-sync replicas, one request per partition (partitionedSend.ts), retried until acknowledged.
 */
import kafkajs, { CompressionTypes, Partitioners, type Admin, type Kafka, type Producer } from 'kafkajs';
import { backoffDelay, isRetriable, wait, type BackoffPolicy } from '../runtime/backoff.ts';
import { API_CALL_SCHEMA_V1, type ApiCallEvent, apiCallTypeV1, valueSubject } from '../schemas/apiCall.ts';
import type { SchemaRegistryClient } from '../schemas/registry.ts';
import { FramedEncoder } from '../schemas/wire.ts';
import { PartitionCount, PartitionedBatch, permanentBrokerError } from './partitionedSend.ts';
import { KeyPartitioner } from './partitioner.ts';

/**
 * The kafkajs producer settings every apilog writer shares: idempotent (the broker discards a retried copy),
 * one request in flight (retries keep order), and a send never creates a topic (ensureTopic does, with its
 * partition count).
 */
export const PRODUCER_DELIVERY = { idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false } as const;

/** Registers a version of the event schema (its text) under `<topic>-value`, or finds it, and returns its id, for framing. */
export function registerEventSchema(registry: SchemaRegistryClient, topic: string, schema: string = API_CALL_SCHEMA_V1): Promise<number> {
  return registry.register(valueSubject(topic), schema);
}

export interface ApiCallProducerOptions {
  readonly kafka: Kafka;
  readonly registry: SchemaRegistryClient;
  readonly topic: string;
  /** Compress batches with GZIP (kafkajs's built-in codec). @default false */
  readonly gzip?: boolean;
  /** Retriable failures (a broker down, a leader changing) are retried for this long per send. @default 120000 */
  readonly retryForMs?: number;
}

interface KeyedMessage {
  key: string;
  value: Buffer;
  partition?: number;
}

const RETRY: BackoffPolicy = { initialMs: 100, maxMs: 2000 };
// kafkajs is CommonJS: its error classes are found through the default export only.
const { KafkaJSError } = kafkajs;

/**
 * Whether sending again may succeed: any Kafka client error but a broker's permanent answer (kafkajs reports a
 * failure after its own retries as not retriable, so its flag does not tell), or one of ours that says so.
 */
const worthRetrying = (error: unknown) => (error instanceof KafkaJSError ? permanentBrokerError(error) === undefined : isRetriable(error));

export class ApiCallProducer {
  private readonly producer: Producer;
  private readonly admin: Admin;
  private readonly partitions: PartitionCount;
  private readonly partitioner = new KeyPartitioner();
  private encoder: FramedEncoder<ApiCallEvent> | undefined;
  /** Send attempts that failed and were tried again. */
  retries = 0;

  constructor(private readonly options: ApiCallProducerOptions) {
    this.producer = options.kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner, ...PRODUCER_DELIVERY });
    this.admin = options.kafka.admin();
    this.partitions = new PartitionCount(this.admin, options.topic);
  }

  /** Registers the schema (or finds its id) and connects. */
  async connect(): Promise<number> {
    const schemaId = await registerEventSchema(this.options.registry, this.options.topic);
    this.encoder = new FramedEncoder<ApiCallEvent>(apiCallTypeV1, schemaId);
    await this.producer.connect();
    await this.admin.connect();
    return schemaId;
  }

  /**
   * Encodes and sends a batch; resolves when every message is acknowledged by all in-sync replicas. Partitions not
   * acknowledged are sent again (the broker drops a copy it has) for `retryForMs`; then the last error is thrown.
   */
  async send(events: readonly ApiCallEvent[]): Promise<void> {
    const encoder = this.encoder;
    if (!encoder) throw new Error('ApiCallProducer.send called before connect()');
    const messages = new Array<KeyedMessage>(events.length);
    for (let i = 0; i < events.length; i++) {
      const event = events[i]!;
      messages[i] = { key: event.api, value: encoder.encode(event) };
    }
    const compression = this.options.gzip ? CompressionTypes.GZIP : CompressionTypes.None;
    const giveUpAt = Date.now() + (this.options.retryForMs ?? 120_000);
    let batch: PartitionedBatch<KeyedMessage> | undefined;
    for (let attempt = 1; ; attempt++) {
      try {
        if (batch === undefined) {
          const count = await this.partitions.get();
          batch = new PartitionedBatch(messages, (m) => this.partitioner.partition(m.key, 0, count));
        }
        await batch.send(this.producer, this.options.topic, compression);
        return;
      } catch (error) {
        if (!worthRetrying(error) || Date.now() >= giveUpAt) throw error;
        this.retries++;
        await wait(RETRY, backoffDelay(RETRY, attempt));
      }
    }
  }

  async disconnect(): Promise<void> {
    await this.producer.disconnect();
    await this.admin.disconnect();
  }
}
