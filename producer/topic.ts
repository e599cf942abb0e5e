/**
 * Topics are created explicitly, never auto-created: the partition count decides how far the consumer
 * group can scale, so it is chosen, not inherited from a broker default.
 *
 * A CreateTopics answer means the controller has committed the topic, not that the broker serves it: the broker
 * applies the metadata log on its own thread, and until it has, Metadata answers UNKNOWN_TOPIC_OR_PARTITION. The gap
 * grows with load and is widest on a freshly started broker. kafkajs's createTopics({ waitForLeaders: true }) waits
 * through LEADER_NOT_AVAILABLE only and throws that answer, so ensureTopic creates without it and does the waiting.
 */
import type { Admin, Kafka } from 'kafkajs';
import { retrying, type BackoffPolicy, type RetryHooks } from '../runtime/backoff.ts';
import { ApilogError, ConfigError, describeError } from '../runtime/errors.ts';

export interface TopicSpec {
  readonly topic: string;
  /** @default 6 */
  readonly partitions?: number;
  /**
   * Replicas of each partition. @default the broker's `default.replication.factor` (1 on the local stack's single
   * broker, 3 on the local cluster), asked for with -1 (Kafka 2.4+, KIP-464)
   */
  readonly replicationFactor?: number;
}

/** Between attempts while the broker catches up: it usually takes milliseconds, under load seconds. */
const CATCHING_UP: BackoffPolicy = { initialMs: 50, maxMs: 1000 };

/**
 * Creates the topic if it does not exist and returns its partition count once the broker serves it: every partition
 * has a leader. Retriable errors are retried until `timeoutMs` has passed; others are thrown at once.
 */
export async function ensureTopic(kafka: Kafka, spec: TopicSpec, timeoutMs = 60_000): Promise<number> {
  const giveUpAt = Date.now() + timeoutMs;
  let last: unknown;
  const hooks: RetryHooks = {
    onRetry: (error) => {
      last = error;
    },
    between: () => {
      if (Date.now() < giveUpAt) return;
      throw new ApilogError(`topic ${spec.topic} not ready within ${timeoutMs / 1000} s: ${describeError(last)}`, { cause: last });
    },
  };
  const admin = kafka.admin();
  await admin.connect();
  try {
    await retrying(CATCHING_UP, () => create(admin, spec), hooks);
    return await retrying(CATCHING_UP, () => ledPartitions(admin, spec.topic), hooks);
  } finally {
    await admin.disconnect();
  }
}

async function create(admin: Admin, spec: TopicSpec): Promise<void> {
  if ((await admin.listTopics()).includes(spec.topic)) return;
  // Resolves false when another client created it meanwhile: just as good.
  await admin.createTopics({
    waitForLeaders: false,
    topics: [{ topic: spec.topic, numPartitions: spec.partitions ?? 6, replicationFactor: spec.replicationFactor ?? -1 }],
  });
}

/** The partition count once the broker's metadata has a leader for each; a retriable error before. */
async function ledPartitions(admin: Admin, topic: string): Promise<number> {
  const meta = await admin.fetchTopicMetadata({ topics: [topic] });
  const partitions = meta.topics.find((t) => t.name === topic)?.partitions ?? [];
  const led = partitions.filter((p) => p.leader >= 0).length;
  if (partitions.length === 0 || led < partitions.length) {
    throw new ApilogError(`topic ${topic}: ${led} of ${partitions.length} partitions have a leader`, { retriable: true });
  }
  return partitions.length;
}

/**
 * The topic's partition count; a ConfigError when the topic does not exist, so a command that only writes (ingest)
 * fails at start with one line instead of accepting events that can never be sent.
 */
export async function requireTopic(kafka: Kafka, topic: string, where: string): Promise<number> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    if (!(await admin.listTopics()).includes(topic)) {
      throw new ConfigError(`topic ${topic} does not exist in Kafka at ${where}: create it, or pass --create-topic (with --partitions N, default 6)`);
    }
    const meta = await admin.fetchTopicMetadata({ topics: [topic] });
    return meta.topics[0]?.partitions.length ?? 0;
  } finally {
    await admin.disconnect();
  }
}
