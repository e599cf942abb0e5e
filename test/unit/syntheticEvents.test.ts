import { describe, expect, it } from 'vitest';
import { apiCallTypeV1 } from '../../schemas/apiCall.ts';
import { SyntheticEvents, apiCatalogue } from '../../producer/syntheticEvents.ts';

describe('synthetic events', () => {
  it('are valid against the Avro schema', () => {
    const events = new SyntheticEvents({ seed: 9, apis: 30 }).take(2000);
    for (const e of events) expect(apiCallTypeV1.isValid(e)).toBe(true);
  });

  it('are deterministic per seed and differ across seeds', () => {
    const a = new SyntheticEvents({ seed: 5, startMs: 1 }).take(100);
    const b = new SyntheticEvents({ seed: 5, startMs: 1 }).take(100);
    const c = new SyntheticEvents({ seed: 6, startMs: 1 }).take(100);
    expect(a).toEqual(b);
    expect(a).not.toEqual(c);
  });

  it('have unique ids and skewed API popularity', () => {
    const events = new SyntheticEvents({ seed: 1, apis: 10 }).take(20_000);
    expect(new Set(events.map((e) => e.event_id)).size).toBe(events.length);
    const counts = new Map<string, number>();
    for (const e of events) counts.set(e.api, (counts.get(e.api) ?? 0) + 1);
    const sorted = [...counts.values()].sort((x, y) => y - x);
    expect(counts.size).toBe(10);
    expect(sorted[0]!).toBeGreaterThan(3 * sorted[9]!);
  });

  it('name distinct APIs', () => {
    const names = apiCatalogue(120).map((a) => a.api);
    expect(new Set(names).size).toBe(120);
  });
});
