/**
 * The SDK's partitioner for kafkajs: Java-compatible murmur2 of the key (the API name), so every client that
 * uses Kafka's default partitioner agrees on where an API's events go. Hashes are cached per key: the key set
 * is the set of API names, small and hot.
 *
 * Hot-key spreading (opt-in): an API named in `hotKeys` with a spread of N goes to the N partitions starting at
 * its murmur2 partition, `(base + slot) % partitions`, where `slot` is chosen when the event is encoded (round
 * robin) and stays with the message through retries and the spool, so a retried batch goes where it went first.
 * The cost: events of that API are ordered within each of its N partitions, NOT across them. Consumers that
 * need the per-API order of a spread API must re-order by `ts` (or not spread that API).
 */
import type { ICustomPartitioner, Message } from 'kafkajs';
import { murmur2String } from './murmur2.ts';

/** A kafkajs message that carries its hot-key slot. */
export interface SlottedMessage extends Message {
  key: string;
  value: Buffer;
  /** 0 for an ordinary key; 0..spread-1 for a spread hot key. */
  slot: number;
}

const MAX_CACHED_KEYS = 10_000;

export class KeyPartitioner {
  private readonly hashes = new Map<string, number>();
  private readonly counters = new Map<string, number>();

  constructor(private readonly hotKeys: ReadonlyMap<string, number> = new Map()) {}

  /** The non-negative murmur2 hash of a key, cached. */
  positiveHash(key: string): number {
    let h = this.hashes.get(key);
    if (h === undefined) {
      h = murmur2String(key) & 0x7fffffff;
      if (this.hashes.size >= MAX_CACHED_KEYS) this.hashes.clear();
      this.hashes.set(key, h);
    }
    return h;
  }

  /** The slot of the next event with this key: round robin over the key's spread, 0 for ordinary keys. */
  nextSlot(key: string): number {
    const spread = this.hotKeys.get(key);
    if (spread === undefined || spread <= 1) return 0;
    const n = this.counters.get(key) ?? 0;
    this.counters.set(key, n + 1 === spread ? 0 : n + 1);
    return n;
  }

  partition(key: string, slot: number, partitions: number): number {
    const base = this.positiveHash(key) % partitions;
    return slot === 0 ? base : (base + slot) % partitions;
  }

  /** A kafkajs `createPartitioner` that places messages with this partitioner. */
  kafkajs(): ICustomPartitioner {
    return () => ({ partitionMetadata, message }) => {
      const m = message as Partial<SlottedMessage>;
      if (typeof m.partition === 'number') return m.partition;
      if (typeof m.key !== 'string') throw new TypeError('apilog messages always have a string key');
      return this.partition(m.key, m.slot ?? 0, partitionMetadata.length);
    };
  }
}
