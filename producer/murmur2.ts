/**
 * Kafka's key hash: the Java client's `Utils.murmur2` (seed 0x9747b28c) and `toPositive(hash) % partitions`,
 * the choice of its default partitioner (and of librdkafka's `murmur2_random`, and so of PHP's rdkafka).
 * A key hashed here lands on the same partition as the same key sent by those clients.
 */

const SEED = 0x9747b28c;
const M = 0x5bd1e995;

/** murmur2 of bytes, as the signed 32-bit int Java returns. */
export function murmur2(data: Uint8Array): number {
  const length = data.length;
  let h = SEED ^ length;
  const whole = length & ~3;
  for (let i = 0; i < whole; i += 4) {
    let k = data[i]! | (data[i + 1]! << 8) | (data[i + 2]! << 16) | (data[i + 3]! << 24);
    k = Math.imul(k, M);
    k ^= k >>> 24;
    k = Math.imul(k, M);
    h = Math.imul(h, M) ^ k;
  }
  switch (length & 3) {
    case 3:
      h ^= data[whole + 2]! << 16;
    // falls through
    case 2:
      h ^= data[whole + 1]! << 8;
    // falls through
    case 1:
      h ^= data[whole]!;
      h = Math.imul(h, M);
  }
  h ^= h >>> 13;
  h = Math.imul(h, M);
  h ^= h >>> 15;
  return h | 0;
}

/** murmur2 of a string's UTF-8 bytes. */
export function murmur2String(key: string): number {
  return murmur2(Buffer.from(key, 'utf8'));
}

/** Java's `Utils.toPositive(murmur2(key)) % partitions`. */
export function partitionForKey(key: string | Uint8Array, partitions: number): number {
  const hash = typeof key === 'string' ? murmur2String(key) : murmur2(key);
  return (hash & 0x7fffffff) % partitions;
}
