/**
 * Writes API-call events to Kafka: Avro in the Confluent framing, schema registered once under
 * `<topic>-value`, key = API name (kafkajs's default partitioner is Java-compatible murmur2),
 * idempotent producer, acks from all in-sync replicas.
 */
import { CompressionTypes, Partitioners, type Kafka, type Message, type Producer } from 'kafkajs';
import { API_CALL_SCHEMA_V1, type ApiCallEvent, apiCallTypeV1, valueSubject } from '../schemas/apiCall.ts';
import type { SchemaRegistryClient } from '../schemas/registry.ts';
import { FramedEncoder } from '../schemas/wire.ts';

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
}

export class ApiCallProducer {
  private readonly producer: Producer;
  private encoder: FramedEncoder<ApiCallEvent> | undefined;

  constructor(private readonly options: ApiCallProducerOptions) {
    this.producer = options.kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner, ...PRODUCER_DELIVERY });
  }

  /** Registers the schema (or finds its id) and connects. */
  async connect(): Promise<number> {
    const schemaId = await registerEventSchema(this.options.registry, this.options.topic);
    this.encoder = new FramedEncoder<ApiCallEvent>(apiCallTypeV1, schemaId);
    await this.producer.connect();
    return schemaId;
  }

  /** Encodes and sends a batch; resolves when every message is acknowledged by all in-sync replicas. */
  async send(events: readonly ApiCallEvent[]): Promise<void> {
    const encoder = this.encoder;
    if (!encoder) throw new Error('ApiCallProducer.send called before connect()');
    const messages: Message[] = new Array<Message>(events.length);
    for (let i = 0; i < events.length; i++) {
      const event = events[i]!;
      messages[i] = { key: event.api, value: encoder.encode(event) };
    }
    await this.producer.send({
      topic: this.options.topic,
      acks: -1,
      compression: this.options.gzip ? CompressionTypes.GZIP : CompressionTypes.None,
      messages,
    });
  }

  async disconnect(): Promise<void> {
    await this.producer.disconnect();
  }
}
