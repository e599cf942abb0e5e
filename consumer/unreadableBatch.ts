/**
 * Where a consumer's fetch met a record batch it cannot read (runtime/kafkaCodecs.ts: UnreadableBatchError).
 *
 * kafkajs decodes one fetch response for all the partitions a broker leads, and a codec it cannot run fails the
 * whole response: the error names the codec, never the partition, and no batch of that fetch reaches the consumer
 * (so nothing of it is stored or committed). This finds the partition afterwards, for the one line the operator
 * reads: a probe member of a throwaway group starts at the stopped group's committed offsets and fetches the
 * partitions with unread records one at a time (the others paused), until one fails the same way or every one has
 * been read to the end it had when the probe began. The probe commits nothing, and its group is deleted.
 */
import { randomBytes } from 'node:crypto';
import type { Admin, Kafka } from 'kafkajs';
import { unreadableBatchIn } from '../runtime/kafkaCodecs.ts';

export interface UnreadableAt {
  readonly partition: number;
  /** The stopped group's committed offset there (or where it would have started): nothing from it on is committed. */
  readonly from: string;
}

export interface LocateOptions {
  readonly topic: string;
  /** The consumer group that stopped. */
  readonly groupId: string;
  /** Where the group starts on a partition without a committed offset (the consumer's own setting). */
  readonly fromBeginning: boolean;
  /** Give up (undefined) after this long. @default 20000 */
  readonly timeoutMs?: number;
}

interface Unread {
  readonly partition: number;
  readonly from: string;
  /** The partition's end when the probe began. */
  readonly end: bigint;
}

/** The partition whose records the consumer could not read, or undefined when the probe cannot tell in time. */
export async function locateUnreadableBatch(kafka: Kafka, options: LocateOptions): Promise<UnreadableAt | undefined> {
  const { topic } = options;
  const admin = kafka.admin();
  await admin.connect();
  const probeGroup = `${options.groupId}.unreadable-probe.${randomBytes(4).toString('hex')}`;
  let probed = false;
  try {
    const [committed] = await admin.fetchOffsets({ groupId: options.groupId, topics: [topic] });
    const ends = await admin.fetchTopicOffsets(topic);
    const unread: Unread[] = [];
    for (const { partition, low, high } of ends) {
      const offset = committed?.partitions.find((p) => p.partition === partition)?.offset ?? '-1';
      const from = BigInt(offset) >= 0n ? offset : options.fromBeginning ? low : high;
      if (BigInt(from) < BigInt(high)) unread.push({ partition, from, end: BigInt(high) });
    }
    if (unread.length === 0) return undefined;
    // The probe starts where the group stopped: its offsets are set before it joins (a group without members).
    await admin.setOffsets({
      groupId: probeGroup,
      topic,
      partitions: ends.map(({ partition, high }) => ({ partition, offset: unread.find((u) => u.partition === partition)?.from ?? high })),
    });
    probed = true;
    const found = await probe(kafka, probeGroup, topic, unread, options.timeoutMs ?? 20_000);
    return found === undefined ? undefined : { partition: found.partition, from: found.from };
  } finally {
    if (probed) await deleteGroup(admin, probeGroup);
    await admin.disconnect();
  }
}

/** Deletes the probe's group; the broker may still count its member for a moment after it left (GROUP_NOT_EMPTY). */
async function deleteGroup(admin: Admin, groupId: string): Promise<void> {
  for (let attempt = 0; attempt < 10; attempt++) {
    try {
      await admin.deleteGroups([groupId]);
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 300));
    }
  }
}

/** Reads the unread partitions one at a time; resolves with the one whose fetch fails on an unreadable batch. */
function probe(kafka: Kafka, groupId: string, topic: string, unread: readonly Unread[], timeoutMs: number): Promise<Unread | undefined> {
  const consumer = kafka.consumer({ groupId, allowAutoTopicCreation: false, retry: { retries: 0, restartOnFailure: async () => false } });
  let current = 0;
  let settle: (found: Unread | undefined) => void = () => undefined;
  const done = new Promise<Unread | undefined>((resolve) => (settle = resolve));
  const timer = setTimeout(() => settle(undefined), timeoutMs);
  const readOnly = (index: number) => {
    consumer.pause([{ topic }]);
    consumer.resume([{ topic, partitions: [unread[index]!.partition] }]);
  };
  // Runs before the first fetch of the generation: only the first unread partition is fetched.
  consumer.on(consumer.events.GROUP_JOIN, () => readOnly(current));
  consumer.on(consumer.events.CRASH, (event) => settle(unreadableBatchIn(event.payload.error) ? unread[current] : undefined));
  const run = (async () => {
    await consumer.connect();
    await consumer.subscribe({ topics: [topic] });
    await consumer.run({
      autoCommit: false,
      eachBatch: async ({ batch }) => {
        const at = unread[current]!;
        if (batch.partition !== at.partition || BigInt(batch.lastOffset()) + 1n < at.end) return;
        // Read to its end without a failure: not this partition.
        if (++current === unread.length) settle(undefined);
        else readOnly(current);
      },
    });
  })();
  run.catch(() => settle(undefined));
  return done.finally(async () => {
    clearTimeout(timer);
    await consumer.disconnect().catch(() => undefined);
  });
}
