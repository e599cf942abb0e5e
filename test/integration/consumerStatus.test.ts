/**
 * `apilog status` against the real broker and ClickHouse server (integration): records are produced to chosen
 * partitions, so every figure is known before it is read. After a group has consumed them and stopped, and more
 * records arrived, status must report each partition's committed and end offsets, lag, rows, highest stored offset
 * and last insert exactly, the ledger clean, the dead letter counted (and, while it ran, one member owning every
 * partition); the CLI's --json must say the same, and its
 * table show it. A group stopped between its write-ahead intent and its insert must show the interrupted batch.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiCallConsumer } from '../../consumer/apiCallConsumer.ts';
import { ensureApiCallsTable } from '../../clickhouse/apiCallsTable.ts';
import { deadLetterTopicFor } from '../../consumer/deadLetters.ts';
import { readGroupStatus, type GroupStatus, type StatusOptions } from '../../consumer/groupStatus.ts';
import { openSink } from '../../clickhouse/openSink.ts';
import { SyntheticEvents } from '../../producer/syntheticEvents.ts';
import { ensureTopic } from '../../producer/topic.ts';
import { ConfigError } from '../../runtime/errors.ts';
import { API_CALL_SCHEMA_V1, apiCallTypeV1, valueSubject, type ApiCallEvent } from '../../schemas/apiCall.ts';
import { FramedEncoder } from '../../schemas/wire.ts';
import { countRows, kafkaClient, logger, registryClient, stack, uniqueName } from './pipeline.ts';
import { APILOG, run } from './processes.ts';

const topic = uniqueName('it-status');
const deadLetterTopic = deadLetterTopicFor(topic);
const sink = await openSink(stack().clickhouse);
const kafka = kafkaClient();
const admin = kafka.admin();
const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
let encoder: FramedEncoder<ApiCallEvent>;
const events = new SyntheticEvents({ seed: 11, startMs: Date.UTC(2026, 10, 2) });

/** Sends `count` good records to `partition`, and a record that is not Avro after the first `poisonAfter` of them. */
async function send(partition: number, count: number, poisonAfter?: number): Promise<void> {
  const messages = events.take(count).map((e) => ({ key: e.api, value: encoder.encode(e), partition }));
  if (poisonAfter !== undefined) messages.splice(poisonAfter, 0, { key: 'poison', value: Buffer.from('{"not":"avro"}'), partition });
  await producer.send({ topic, acks: -1, messages });
}

const optionsFor = (groupId: string, table: string): StatusOptions => ({ admin, sink, topic, groupId, table, deadLetterTopic });

function apilogStatus(groupId: string, table: string, ...flags: string[]) {
  return run([...APILOG, 'status', '--topic', topic, '--group', groupId, '--table', table, ...flags], {
    env: { KAFKA_BROKERS: stack().brokers, SCHEMA_REGISTRY_URL: stack().registry, CLICKHOUSE_URL: stack().clickhouse },
  });
}

beforeAll(async () => {
  await ensureTopic(kafka, { topic, partitions: 3 });
  await ensureTopic(kafka, { topic: deadLetterTopic, partitions: 1 });
  const schemaId = await registryClient().register(valueSubject(topic), API_CALL_SCHEMA_V1);
  encoder = new FramedEncoder<ApiCallEvent>(apiCallTypeV1, schemaId);
  await producer.connect();
  await admin.connect();
  // Partition 0: offsets 0-39; partition 1: 25 good records with one that is not Avro at offset 12; partition 2: 0-9.
  await send(0, 40);
  await send(1, 25, 12);
  await send(2, 10);
});

afterAll(async () => {
  await producer.disconnect();
  await admin.disconnect();
  await sink.close();
});

describe('apilog status (integration)', () => {
  const group = uniqueName('group');
  const table = uniqueName('status');
  let consumedBy: number;
  let status: GroupStatus;

  it('reports what a stopped group committed, the lag since, what ClickHouse holds and the dead letter', async () => {
    await ensureApiCallsTable(sink, table);
    const before = await readGroupStatus(optionsFor(group, table));
    expect(before.partitions.map((p) => [p.committed, p.end, p.lag, p.rows, p.batch.kind])).toEqual([
      [null, 40, 40, 0, 'none'],
      [null, 26, 26, 0, 'none'],
      [null, 10, 10, 0, 'none'],
    ]);
    expect(before.deadLetters).toEqual({ topic: deadLetterTopic, exists: true, records: 0 });

    consumedBy = Math.floor(Date.now() / 1000);
    const consumer = new ApiCallConsumer({ kafka: kafkaClient(), registry: registryClient(), sink, logger, topic, table, deadLetterTopic, groupId: group });
    await consumer.start();
    try {
      const deadline = Date.now() + 60_000;
      while ((await countRows(sink, table)) < 75 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
      // While it runs: one member, which owns every partition (the test's Kafka client id, on this host).
      const running = await readGroupStatus(optionsFor(group, table));
      expect(running.group).toEqual({ id: group, state: 'Stable', members: 1 });
      for (const p of running.partitions) expect(p.owner).toMatch(/^apilog-test \(.+\)$/);
    } finally {
      await consumer.stop();
    }
    expect(await countRows(sink, table)).toBe(75);
    await send(2, 7); // arrives after the group stopped: partition 2 lags by 7
    status = await readGroupStatus(optionsFor(group, table));

    expect(status.group).toEqual({ id: group, state: 'Empty', members: 0 });
    expect(status.table).toEqual({ name: table, exists: true });
    expect(status.partitions.map(({ lastInsert, ...p }) => p)).toEqual([
      { partition: 0, committed: 40, start: 0, end: 40, lag: 0, batch: { kind: 'clean' }, owner: null, rows: 40, storedUpTo: 39 },
      { partition: 1, committed: 26, start: 0, end: 26, lag: 0, batch: { kind: 'clean' }, owner: null, rows: 25, storedUpTo: 25 },
      { partition: 2, committed: 10, start: 0, end: 17, lag: 7, batch: { kind: 'clean' }, owner: null, rows: 10, storedUpTo: 9 },
    ]);
    for (const p of status.partitions) {
      const at = Date.parse(p.lastInsert!) / 1000;
      expect(at).toBeGreaterThanOrEqual(consumedBy - 1);
      expect(at).toBeLessThanOrEqual(Date.now() / 1000 + 1);
    }
    expect(status.total).toEqual({ lag: 7, rows: 75, lastInsert: [...status.partitions.map((p) => p.lastInsert!)].sort().at(-1), batchesInFlight: 0 });
    expect(status.deadLetters).toEqual({ topic: deadLetterTopic, exists: true, records: 1 });
  });

  it('prints the same as JSON, and as a table for people', async () => {
    const json = await apilogStatus(group, table, '--json');
    expect(json.code, json.stderr).toBe(0);
    expect(JSON.parse(json.stdout)).toEqual(status);

    const human = await apilogStatus(group, table);
    expect(human.code, human.stderr).toBe(0);
    const lines = human.stdout.split('\n');
    expect(lines[0]).toBe(`topic ${topic}, group ${group}: Empty, 0 members`);
    expect(lines[1]).toBe(`ClickHouse: table ${table} at ${stack().clickhouse}`);
    expect(lines[3]).toMatch(/^partition\s+committed\s+end\s+lag\s+rows\s+stored up to\s+last insert \(UTC\)\s+batch\s+owner$/);
    const p2 = status.partitions[2]!.lastInsert!.replace('T', ' ').replace('Z', '');
    expect(lines[6]).toMatch(new RegExp(`^2\\s+10\\s+17\\s+7\\s+10\\s+9\\s+${p2}\\s+clean\\s+-$`));
    expect(lines[7]).toMatch(/^total\s+7\s+75\s/);
    expect(human.stdout).toContain(`dead letters: 1 record in ${deadLetterTopic}`);
  });

  it('shows the batch of a group stopped between its write-ahead intent and its insert', async () => {
    const table2 = uniqueName('status_intent');
    const group2 = uniqueName('group');
    await ensureApiCallsTable(sink, table2);
    let stopped!: () => void;
    const fatal = new Promise<void>((resolve) => (stopped = resolve));
    const consumer = new ApiCallConsumer({
      kafka: kafkaClient(), registry: registryClient(), sink, logger, topic, table: table2, deadLetterTopic, groupId: group2,
      // A fatal error right after the intent is committed: nothing is inserted, and kafkajs does not restart.
      crashPoint: (point) => {
        if (point === 'before-insert') throw new ConfigError('test: stopped between the intent and the insert');
      },
      onFatal: () => stopped(),
    });
    await consumer.start();
    await fatal;
    await consumer.stop();

    const s = await readGroupStatus(optionsFor(group2, table2));
    expect(await countRows(sink, table2)).toBe(0);
    const intents = s.partitions.filter((p) => p.batch.kind === 'intent');
    expect(intents.length).toBeGreaterThan(0);
    expect(s.total.batchesInFlight).toBe(intents.length);
    for (const p of intents) {
      // The intent is committed at the batch's first offset and names its last; this group had committed nothing before.
      expect(p.committed).toBe(0);
      expect(p.lag).toBe(p.end);
      expect(p.batch).toMatchObject({ kind: 'intent', from: 0 });
      const to = (p.batch as { to: number }).to;
      expect(to).toBeGreaterThanOrEqual(0);
      expect(to).toBeLessThanOrEqual(p.end - 1);
      expect(p.rows).toBe(0);
    }
    const human = await apilogStatus(group2, table2);
    expect(human.code, human.stderr).toBe(0);
    const first = intents[0]!;
    expect(human.stdout).toMatch(new RegExp(`^${first.partition}\\s+0\\s+${first.end}\\s+${first.end}\\s+0\\s+-\\s+-\\s+interrupted 0-${(first.batch as { to: number }).to}\\s+-$`, 'm'));
    expect(human.stdout).toContain(`${intents.length} in flight or interrupted`);
  });

  it('fails with one line when the topic does not exist', async () => {
    const result = await run([...APILOG, 'status', '--topic', uniqueName('missing')], {
      env: { KAFKA_BROKERS: stack().brokers, SCHEMA_REGISTRY_URL: stack().registry, CLICKHOUSE_URL: stack().clickhouse },
    });
    expect(result.code).toBe(78); // EXIT.config: a restart cannot fix it
    expect(result.stderr.trim()).toMatch(/^apilog: topic missing_\S+ does not exist$/);
  });
});
