/**
 * `apilog status`'s table for people, from a status object (the figures themselves are tested against the real
 * broker and server in test/integration/consumerStatus.test.ts): every ledger state in words, a batch in flight
 * told from an interrupted one by whether the partition has an owner, columns aligned.
 */
import { describe, expect, it } from 'vitest';
import { describeBatch, formatStatus } from '../../cli/status.ts';
import type { GroupStatus, PartitionStatus } from '../../consumer/groupStatus.ts';

const partition = (p: Partial<PartitionStatus>): PartitionStatus => ({
  partition: 0, committed: 10, start: 0, end: 12, lag: 2, batch: { kind: 'clean' }, owner: null, rows: 10, storedUpTo: 9, lastInsert: '2026-11-02T09:00:00Z', ...p,
});

describe('apilog status, as a table', () => {
  it('says what each ledger state means', () => {
    const intent = { kind: 'intent', from: 10, to: 11, token: 't' } as const;
    expect(describeBatch(partition({ batch: { kind: 'none' }, committed: null }))).toBe('no commit');
    expect(describeBatch(partition({}))).toBe('clean');
    expect(describeBatch(partition({ batch: { kind: 'unknown' } }))).toBe('not apilog metadata');
    expect(describeBatch(partition({ batch: intent, owner: 'apilog-consume (10.0.0.5)' }))).toBe('in flight 10-11');
    expect(describeBatch(partition({ batch: intent }))).toBe('interrupted 10-11');
  });

  it('aligns the columns and sums the lag and rows', () => {
    const status: GroupStatus = {
      topic: 'api-calls',
      group: { id: 'apilog-consumer', state: 'Stable', members: 1 },
      table: { name: 'api_calls', exists: true },
      partitions: [
        partition({ owner: 'apilog-consume (10.0.0.5)' }),
        partition({ partition: 1, committed: 1000, end: 1000, lag: 0, rows: 998, storedUpTo: 999, batch: { kind: 'intent', from: 1000, to: 1499, token: 't' }, owner: 'apilog-consume (10.0.0.5)' }),
      ],
      total: { lag: 2, rows: 1008, lastInsert: '2026-11-02T09:00:00Z', batchesInFlight: 1 },
      deadLetters: { topic: 'api-calls.dead-letter', exists: false, records: 0 },
    };
    expect(formatStatus(status, 'http://clickhouse:8123')).toBe(
      [
        'topic api-calls, group apilog-consumer: Stable, 1 member',
        'ClickHouse: table api_calls at http://clickhouse:8123',
        '',
        'partition  committed   end  lag  rows  stored up to  last insert (UTC)    batch                       owner',
        '0                 10    12    2    10             9  2026-11-02 09:00:00  clean                       apilog-consume (10.0.0.5)',
        '1               1000  1000    0   998           999  2026-11-02 09:00:00  in flight 1000-1499         apilog-consume (10.0.0.5)',
        'total                         2  1008                2026-11-02 09:00:00  1 in flight or interrupted',
        '',
        'dead letters: topic api-calls.dead-letter does not exist',
        '',
      ].join('\n'),
    );
  });
});
