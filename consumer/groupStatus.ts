/**
 * Where a consumer group stands, read from the outside (`apilog status`): per partition of the topic the committed
 * offset and the write-ahead record committed with it (ledger.ts), the log's start and end offsets, the lag, the member
 * that owns the partition, and what ClickHouse holds from it (rows, highest stored offset, last insert); then the size
 * of the dead-letter topic. Read-only: it joins no group, commits nothing and writes nothing.
 *
 * Each figure is read once, Kafka and ClickHouse one after the other, so a running group may have moved on between
 * the reads: the figures agree exactly only while the group is idle.
 */
import kafkajs, { type Admin } from 'kafkajs';
import { z } from 'zod';
import { ConfigError } from '../runtime/errors.ts';
import { parseLedger } from './ledger.ts';
import { checkTableName, type Sink } from '../clickhouse/sink.ts';

// kafkajs is CommonJS: its helpers are reached through the default export (see runtime/kafka.ts).
const { AssignerProtocol } = kafkajs;

/** What the committed metadata says of a partition's batch. */
export type BatchState =
  /** Nothing committed yet: the group starts at the log's start (or its end, with --from-latest). */
  | { readonly kind: 'none' }
  /** Every batch before the committed offset is durable and nothing after it was sent. */
  | { readonly kind: 'clean' }
  /**
   * A batch [from, to] was committed as an intent and not yet as durable: its insert is under way if the partition
   * has an owner, or was interrupted, and the next owner completes it exactly once.
   */
  | { readonly kind: 'intent'; readonly from: number; readonly to: number; readonly token: string; readonly entry?: string }
  /** Metadata apilog did not write (another tool, offsets reset by hand): a new owner reads ClickHouse to resume. */
  | { readonly kind: 'unknown' };

export interface PartitionStatus {
  readonly partition: number;
  /** The next offset the group reads (the committed offset), null when the group has committed none. */
  readonly committed: number | null;
  /** The log's first retained offset (low watermark). */
  readonly start: number;
  /** The offset the next record will get (high watermark). */
  readonly end: number;
  /** Records between where the group resumes (the committed offset, or the log's start) and the end. */
  readonly lag: number;
  readonly batch: BatchState;
  /** The member that owns the partition, `clientId (host)`, when the group has one. */
  readonly owner: string | null;
  /** Rows ClickHouse holds from this partition (null when the table is missing). */
  readonly rows: number | null;
  /** The highest offset stored from this partition, null when none. */
  readonly storedUpTo: number | null;
  /** When the last row from this partition was inserted (ISO 8601, UTC; second precision), null when none. */
  readonly lastInsert: string | null;
}

export interface GroupStatus {
  readonly topic: string;
  readonly group: {
    readonly id: string;
    /** Kafka's group state: Stable, PreparingRebalance, CompletingRebalance, Empty, Dead. */
    readonly state: string;
    readonly members: number;
  };
  readonly table: { readonly name: string; readonly exists: boolean };
  readonly partitions: readonly PartitionStatus[];
  readonly total: {
    readonly lag: number;
    readonly rows: number | null;
    readonly lastInsert: string | null;
    /** Partitions whose ledger holds an intent (a batch in flight, or interrupted). */
    readonly batchesInFlight: number;
  };
  readonly deadLetters: {
    readonly topic: string;
    readonly exists: boolean;
    /** Records the dead-letter topic holds now (end minus start, over its partitions). */
    readonly records: number;
  };
}

export interface StatusOptions {
  readonly admin: Admin;
  readonly sink: Sink;
  readonly topic: string;
  readonly groupId: string;
  readonly table: string;
  readonly deadLetterTopic: string;
}

/** Kafka offsets are int64 decimal strings; anything else is a broker answer we do not understand. */
const offset = (text: string, what: string): number => {
  const n = Number(text);
  if (!Number.isSafeInteger(n)) throw new Error(`${what}: unexpected offset "${text}"`);
  return n;
};

/** Rows of the per-partition summary; 64-bit integers come back quoted in JSON formats. */
const storedRow = z.object({
  partition: z.coerce.number().int().nonnegative(),
  rows: z.coerce.number().int().nonnegative(),
  max_offset: z.coerce.number().int().nonnegative(),
  last_insert: z.coerce.number().int().nonnegative(),
});
type StoredSummary = z.infer<typeof storedRow>;

/** The log's start and end offsets per partition of a topic known to exist. */
async function topicOffsets(admin: Admin, topic: string): Promise<Map<number, { start: number; end: number }>> {
  const entries = await admin.fetchTopicOffsets(topic);
  return new Map(entries.map((e) => [e.partition, { start: offset(e.low, `${topic} low watermark`), end: offset(e.high, `${topic} high watermark`) }]));
}

/** Which member owns each partition of `topic`, from the group's current assignment. */
function owners(members: readonly kafkajs.MemberDescription[], topic: string): Map<number, string> {
  const out = new Map<number, string>();
  for (const m of members) {
    if (m.memberAssignment.length === 0) continue;
    const assignment = AssignerProtocol.MemberAssignment.decode(m.memberAssignment);
    for (const p of assignment?.assignment[topic] ?? []) out.set(p, `${m.clientId} (${m.clientHost.replace(/^\//, '')})`);
  }
  return out;
}

function batchState(committed: number | null, metadata: string | null): BatchState {
  if (committed === null) return { kind: 'none' };
  const record = parseLedger(metadata);
  if (record.kind === 'intent') {
    return { kind: 'intent', from: committed, to: record.last, token: record.token, ...(record.entry !== undefined ? { entry: record.entry } : {}) };
  }
  return { kind: record.kind };
}

async function storedSummary(sink: Sink, table: string, topic: string): Promise<Map<number, StoredSummary> | undefined> {
  const name = checkTableName(table);
  const exists = await sink.query<{ result: number | string }>(`EXISTS TABLE ${name}`);
  if (Number(exists[0]?.result ?? 0) === 0) return undefined;
  const rows = await sink.query<unknown>(
    `SELECT _partition AS partition, count() AS rows, max(_offset) AS max_offset, toUnixTimestamp(max(_ingested_at)) AS last_insert
     FROM ${name} WHERE _topic = {topic:String} GROUP BY _partition`,
    { topic },
  );
  return new Map(rows.map((r) => storedRow.parse(r)).map((r) => [r.partition, r]));
}

const isoSeconds = (unixSeconds: number): string => new Date(unixSeconds * 1000).toISOString().replace('.000Z', 'Z');

/** Reads the group's standing. Fails with ConfigError when the topic does not exist. */
export async function readGroupStatus(options: StatusOptions): Promise<GroupStatus> {
  const { admin, sink, topic, groupId, table, deadLetterTopic } = options;
  // Listed first: kafkajs retries offsets requests for an unknown topic for half a minute before it gives up.
  const topics = new Set(await admin.listTopics());
  if (!topics.has(topic)) throw new ConfigError(`topic ${topic} does not exist`);
  const [logOffsets, committedList, groups, stored, deadLetterOffsets] = await Promise.all([
    topicOffsets(admin, topic),
    admin.fetchOffsets({ groupId, topics: [topic] }),
    admin.describeGroups([groupId]),
    storedSummary(sink, table, topic),
    topics.has(deadLetterTopic) ? topicOffsets(admin, deadLetterTopic) : undefined,
  ]);
  const committed = new Map((committedList.find((t) => t.topic === topic)?.partitions ?? []).map((p) => [p.partition, p]));
  const group = groups.groups.find((g) => g.groupId === groupId);
  const owned = owners(group?.members ?? [], topic);

  const partitions: PartitionStatus[] = [...logOffsets.keys()].sort((a, b) => a - b).map((partition) => {
    const { start, end } = logOffsets.get(partition)!;
    const c = committed.get(partition);
    const next = c === undefined || c.offset === '-1' ? null : offset(c.offset, `${topic}:${partition} committed offset`);
    const s = stored?.get(partition);
    return {
      partition,
      committed: next,
      start,
      end,
      // Records below the log's start are gone: a group behind it resumes at the start.
      lag: end - Math.max(next ?? start, start),
      batch: batchState(next, c?.metadata ?? null),
      owner: owned.get(partition) ?? null,
      rows: stored === undefined ? null : s?.rows ?? 0,
      storedUpTo: s?.max_offset ?? null,
      lastInsert: s === undefined ? null : isoSeconds(s.last_insert),
    };
  });
  const lastInserts = partitions.map((p) => p.lastInsert).filter((t): t is string => t !== null).sort();
  return {
    topic,
    group: { id: groupId, state: group?.state ?? 'Dead', members: group?.members.length ?? 0 },
    table: { name: table, exists: stored !== undefined },
    partitions,
    total: {
      lag: partitions.reduce((sum, p) => sum + p.lag, 0),
      rows: stored === undefined ? null : partitions.reduce((sum, p) => sum + (p.rows ?? 0), 0),
      lastInsert: lastInserts[lastInserts.length - 1] ?? null,
      batchesInFlight: partitions.filter((p) => p.batch.kind === 'intent').length,
    },
    deadLetters: {
      topic: deadLetterTopic,
      exists: deadLetterOffsets !== undefined,
      records: [...(deadLetterOffsets?.values() ?? [])].reduce((sum, o) => sum + (o.end - o.start), 0),
    },
  };
}
