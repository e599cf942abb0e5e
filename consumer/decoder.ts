/**
 * Kafka messages → Avro records: Confluent framing → writer schema by id (from the registry, cached) → record.
 * Schema lookups for a whole batch happen before decoding, so the per-message loop has no await.
 */
import type { Type } from 'avsc';
import type { KafkaMessage } from 'kafkajs';
import { DecodeError } from '../runtime/errors.ts';
import type { SchemaRegistryClient } from '../schemas/registry.ts';
import { HEADER_SIZE, MAGIC_BYTE, schemaIdOf } from '../schemas/wire.ts';

/**
 * Makes sure every schema id in `ids` (a batch's `schemaIds`) is cached. Registry outages throw (retriable);
 * ids the registry does not know are left uncached and reported per message (TableWriter.encoderFor).
 */
export async function prefetchSchemas(ids: readonly number[], registry: SchemaRegistryClient): Promise<void> {
  const missing = ids.filter((id) => registry.cachedType(id) === undefined);
  if (missing.length === 0) return;
  await Promise.all(
    missing.map((id) =>
      registry.typeOf(id).catch((error: unknown) => {
        if (error instanceof DecodeError) return undefined; // unknown id: dead-lettered per message
        throw error;
      }),
    ),
  );
}

/**
 * The distinct schema ids of framed messages, in order of appearance (usually one). Non-frames are skipped.
 * Each message's id is compared with the previous message's, so a batch of one schema costs a 4-byte read per message.
 */
export function schemaIds(messages: readonly KafkaMessage[]): number[] {
  const out: number[] = [];
  let last = -1;
  for (const message of messages) {
    const value = message.value;
    if (value === null || value.length < HEADER_SIZE || value[0] !== MAGIC_BYTE) continue;
    const id = schemaIdOf(value);
    if (id === last) continue;
    last = id;
    if (!out.includes(id)) out.push(id);
  }
  return out;
}

/**
 * Decodes a framed message's Avro body (after the 5-byte header) with its writer schema `type` (id `id`). Throws
 * DecodeError('corrupt-avro') when the body does not decode or has bytes left over.
 */
export function decodeFramed(value: Buffer, id: number, type: Type): Record<string, unknown> {
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
  return decoded.value as Record<string, unknown>;
}
