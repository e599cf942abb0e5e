/**
 * `apilog status`: where a consumer group stands, read from Kafka and ClickHouse (consumer/groupStatus.ts): per
 * partition the committed and end offsets, the lag, the batch in flight (from the write-ahead ledger in the commit's
 * metadata), the owner, and the rows and last insert ClickHouse holds from it; then the dead-letter topic's size.
 * A table for people, or `--json`. Joins no group and changes nothing.
 */
import type { Command } from 'commander';
import { DEFAULT_TABLE } from '../clickhouse/apiCallsTable.ts';
import { deadLetterTopicFor } from '../consumer/deadLetters.ts';
import { readGroupStatus, type GroupStatus, type PartitionStatus } from '../consumer/groupStatus.ts';
import { checkTableName } from '../clickhouse/sink.ts';
import { createKafka } from '../runtime/kafka.ts';
import { resolveEndpoints, sinkFor, withEndpoints, type EndpointFlags } from './endpoints.ts';
import { kafkaSecurity, withKafkaSecurity, type SecurityFlags } from './kafkaSecurity.ts';
import { preflight } from './preflight.ts';

interface StatusFlags extends EndpointFlags, SecurityFlags {
  group: string;
  table: string;
  deadLetterTopic?: string;
  json: boolean;
}

export function registerStatus(program: Command): void {
  withKafkaSecurity(withEndpoints(program.command('status')))
    .description("a consumer group's standing per partition: committed and end offsets, lag, batch in flight, rows and last insert in ClickHouse; dead letters")
    .option('--group <id>', 'consumer group id', 'apilog-consumer')
    .option('--table <name>', 'ClickHouse table the group writes', DEFAULT_TABLE)
    .option('--dead-letter-topic <name>', 'dead-letter topic (default <topic>.dead-letter)')
    .option('--json', 'print the status as one JSON object', false)
    .action(async (flags: StatusFlags) => {
      const endpoints = resolveEndpoints(flags);
      const table = checkTableName(flags.table);
      const target = { brokers: endpoints.brokers, ...kafkaSecurity(flags) };
      const sink = await sinkFor(endpoints, flags);
      const admin = createKafka({ ...target, clientId: 'apilog-status' }).admin();
      try {
        await preflight({ ...target, sink });
        await admin.connect();
        const status = await readGroupStatus({
          admin, sink, table,
          topic: endpoints.topic,
          groupId: flags.group,
          deadLetterTopic: flags.deadLetterTopic ?? deadLetterTopicFor(endpoints.topic),
        });
        process.stdout.write(flags.json ? `${JSON.stringify(status)}\n` : formatStatus(status, sink.address));
      } finally {
        await admin.disconnect();
        await sink.close();
      }
    });
}

/** What the ledger says, in a word or two: the batch in flight is the one an owner is sending now. */
export function describeBatch(p: PartitionStatus): string {
  switch (p.batch.kind) {
    case 'none':
      return 'no commit';
    case 'clean':
      return 'clean';
    case 'unknown':
      return 'not apilog metadata';
    case 'intent':
      return `${p.owner === null ? 'interrupted' : 'in flight'} ${p.batch.from}-${p.batch.to}`;
  }
}

const text = (value: number | string | null): string => (value === null ? '-' : String(value));
const when = (iso: string | null): string => (iso === null ? '-' : iso.replace('T', ' ').replace('Z', ''));

/** Columns padded to their widest cell; numbers right-aligned. */
function columns(rows: readonly (readonly string[])[], numeric: readonly boolean[]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((cell, i) => (numeric[i] ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!))).join('  ').trimEnd()).join('\n');
}

/** The status as a table for people. */
export function formatStatus(s: GroupStatus, clickhouse: string): string {
  const members = `${s.group.members} member${s.group.members === 1 ? '' : 's'}`;
  const table = s.table.exists ? `table ${s.table.name} at ${clickhouse}` : `table ${s.table.name} does not exist at ${clickhouse} (run \`apilog migrate\`)`;
  const header = ['partition', 'committed', 'end', 'lag', 'rows', 'stored up to', 'last insert (UTC)', 'batch', 'owner'];
  const numeric = [false, true, true, true, true, true, false, false, false];
  const rows = s.partitions.map((p) => [
    String(p.partition), text(p.committed), String(p.end), String(p.lag), text(p.rows), text(p.storedUpTo), when(p.lastInsert), describeBatch(p), text(p.owner),
  ]);
  const inFlight = s.total.batchesInFlight === 0 ? '' : `${s.total.batchesInFlight} in flight or interrupted`;
  const total = ['total', '', '', String(s.total.lag), text(s.total.rows), '', when(s.total.lastInsert), inFlight, ''];
  const letters = s.deadLetters.exists
    ? `dead letters: ${s.deadLetters.records} record${s.deadLetters.records === 1 ? '' : 's'} in ${s.deadLetters.topic}`
    : `dead letters: topic ${s.deadLetters.topic} does not exist`;
  return [
    `topic ${s.topic}, group ${s.group.id}: ${s.group.state}, ${members}`,
    `ClickHouse: ${table}`,
    '',
    columns([header, ...rows, total], numeric),
    '',
    letters,
    '',
  ].join('\n');
}
