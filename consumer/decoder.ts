/**
 * Kafka messages → Avro records: Confluent framing → writer schema by id (from the registry, cached) → record.
 * Schema lookups for a whole batch happen before decoding, so the per-message loop has no await.
 */
import type { KafkaMessage } from 'kafkajs';
import { DecodeError } from '../runtime/errors.ts';
import type { SchemaRegistryClient } from '../schemas/registry.ts';
import { HEADER_SIZE, frameSchemaId } from '../schemas/wire.ts';

export interface Decoded {
  readonly kind: 'record';
  readonly message: KafkaMessage;
  readonly record: Record<string, unknown>;
}

export interface Undecodable {
  readonly kind: 'error';
  readonly message: KafkaMessage;
  readonly error: DecodeError;
}

export type DecodeResult = Decoded | Undecodable;

/**
 * Makes sure every schema id used in `messages` is cached. Registry outages throw (retriable);
 * ids the registry does not know are left uncached and reported per message by decodeMessage.
 */
export async function prefetchSchemas(messages: readonly KafkaMessage[], registry: SchemaRegistryClient): Promise<void> {
  const missing = new Set<number>();
  for (const message of messages) {
    const value = message.value;
    if (value === null || value.length < HEADER_SIZE || value[0] !== 0) continue;
    const id = value.readUInt32BE(1);
    if (registry.cachedType(id) === undefined) missing.add(id);
  }
  if (missing.size === 0) return;
  await Promise.all(
    [...missing].map((id) =>
      registry.typeOf(id).catch((error: unknown) => {
        if (error instanceof DecodeError) return undefined; // unknown id: dead-lettered per message
        throw error;
      }),
    ),
  );
}

/** Decodes one message whose schema was prefetched. Never throws for bad input: returns an Undecodable. */
export function decodeMessage(message: KafkaMessage, registry: SchemaRegistryClient): DecodeResult {
  try {
    const id = frameSchemaId(message.value);
    const type = registry.cachedType(id);
    if (type === undefined) {
      throw new DecodeError('unknown-schema-id', `schema id ${id} is not in the registry at ${registry.url}`);
    }
    const value = message.value!;
    let decoded: { value: unknown; offset: number };
    try {
      decoded = type.decode(value, HEADER_SIZE);
    } catch (error) {
      throw new DecodeError('corrupt-avro', `Avro body does not decode with schema id ${id}: ${(error as Error).message}`, error);
    }
    if (decoded.offset !== value.length) {
      throw new DecodeError(
        'corrupt-avro',
        decoded.offset < 0
          ? `Avro body is truncated for schema id ${id}`
          : `Avro body has ${value.length - decoded.offset} trailing bytes for schema id ${id}`,
      );
    }
    return { kind: 'record', message, record: decoded.value as Record<string, unknown> };
  } catch (error) {
    if (error instanceof DecodeError) return { kind: 'error', message, error };
    throw error;
  }
}
