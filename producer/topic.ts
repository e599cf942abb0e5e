/**
 * Topics are created explicitly, never auto-created: the partition count decides how far the consumer
 * group can scale, so it is chosen, not inherited from a broker default.
 */
import type { Kafka } from 'kafkajs';
import { ApilogError, ConfigError } from '../runtime/errors.ts';

export interface TopicSpec {
  readonly topic: string;
  /** @default 6 */
  readonly partitions?: number;
  /** @default 1 (the local stack has one broker) */
  readonly replicationFactor?: number;
}

/** Creates the topic if it does not exist; returns its partition count. */
export async function ensureTopic(kafka: Kafka, spec: TopicSpec): Promise<number> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const partitions = spec.partitions ?? 6;
    const existing = await admin.listTopics();
    if (!existing.includes(spec.topic)) {
      await admin.createTopics({
        waitForLeaders: true,
        topics: [{ topic: spec.topic, numPartitions: partitions, replicationFactor: spec.replicationFactor ?? 1 }],
      });
    }
    const meta = await admin.fetchTopicMetadata({ topics: [spec.topic] });
    const count = meta.topics[0]?.partitions.length ?? 0;
    if (count === 0) throw new ApilogError(`topic ${spec.topic} has no partitions`);
    return count;
  } finally {
    await admin.disconnect();
  }
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
