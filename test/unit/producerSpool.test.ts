/** The on-disk spool: order, commit positions, a torn last record, replay by the next process. */
import { appendFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect, test } from 'vitest';
import type { SlottedMessage } from '../../producer/partitioner.ts';
import { Spool } from '../../producer/spool.ts';

const dirs: string[] = [];
const dir = () => {
  const d = mkdtempSync(join(tmpdir(), 'apilog-spool-unit-'));
  dirs.push(d);
  return d;
};
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const message = (i: number): SlottedMessage => ({ key: `api.${i % 3}-é`, value: Buffer.from(`value-${i}`.repeat(1 + (i % 5))), slot: i % 4 });
const same = (a: SlottedMessage[], b: SlottedMessage[]) =>
  expect(a.map((m) => [m.key, m.value.toString(), m.slot])).toEqual(b.map((m) => [m.key, m.value.toString(), m.slot]));

test('appends and reads back in order; commit advances; truncates when drained', async () => {
  const d = dir();
  const spool = await Spool.open(d, 1 << 20);
  const all = Array.from({ length: 25 }, (_, i) => message(i));
  expect(await spool.append(all.slice(0, 10))).toBe(10);
  expect(await spool.append(all.slice(10))).toBe(15);
  const first = await spool.read(10, 1 << 20);
  same(first.messages, all.slice(0, 10));
  expect(first.replayed).toBe(0);
  expect((await spool.read(10, 1 << 20)).nextOffset).toBe(first.nextOffset); // reading does not consume
  await spool.commit(first.nextOffset);
  const rest = await spool.read(100, 1 << 20);
  same(rest.messages, all.slice(10));
  await spool.commit(rest.nextOffset);
  expect(spool.hasData).toBe(false);
  expect(spool.pendingBytes).toBe(0);
  await spool.close();
});

test('a new process resumes after the committed position, counts replayed records, and cuts a torn record', async () => {
  const d = dir();
  const all = Array.from({ length: 8 }, (_, i) => message(i));
  const a = await Spool.open(d, 1 << 20);
  await a.append(all);
  const firstThree = await a.read(3, 1 << 20);
  await a.commit(firstThree.nextOffset);
  await a.close();
  appendFileSync(join(d, 'spool.data'), Buffer.from([0, 0, 1, 0, 7])); // a crash in the middle of an append

  const b = await Spool.open(d, 1 << 20);
  await b.append([message(100)]);
  const batch = await b.read(100, 1 << 20);
  same(batch.messages, [...all.slice(3), message(100)]);
  expect(batch.replayed).toBe(5);
  await b.close();
});

test('refuses what does not fit under maxBytes', async () => {
  const spool = await Spool.open(dir(), 200);
  const big = Array.from({ length: 10 }, (_, i) => ({ key: 'k', value: Buffer.alloc(40, i), slot: 0 }));
  const fitted = await spool.append(big);
  expect(fitted).toBeGreaterThan(0);
  expect(fitted).toBeLessThan(10);
  expect(spool.pendingBytes).toBeLessThanOrEqual(200);
  await spool.close();
});

test('a spool of several MiB, records small and larger than the scan window, reopens whole and cuts a torn record', async () => {
  const d = dir();
  const sizes = [100, 3 << 20, 7, ...Array.from({ length: 20_000 }, (_, i) => 50 + (i % 200)), (1 << 20) - 3, 1];
  const all = sizes.map((n, i) => ({ key: `api.${i % 7}`, value: Buffer.alloc(n, i % 251), slot: i % 3 }));
  const a = await Spool.open(d, 1 << 30);
  expect(await a.append(all)).toBe(all.length);
  await a.close();
  appendFileSync(join(d, 'spool.data'), Buffer.from([0, 0, 0, 9, 0, 0])); // a torn record after them

  const b = await Spool.open(d, 1 << 30);
  const read: SlottedMessage[] = [];
  while (b.hasData) {
    const batch = await b.read(5000, 1 << 20);
    read.push(...batch.messages);
    await b.commit(batch.nextOffset);
  }
  expect(read.length).toBe(all.length);
  expect(read.every((m, i) => m.key === all[i]!.key && m.slot === all[i]!.slot && m.value.equals(all[i]!.value))).toBe(true);
  await b.close();
});
