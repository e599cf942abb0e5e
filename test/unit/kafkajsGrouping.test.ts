/**
 * The lean grouping of a send's messages by partition (runtime/kafkajsGrouping.ts) against kafkajs 2.2.4's own:
 * random sends through random partitioners (kafkajs's answers and a custom partitioner's odd ones), the same object
 * of arrays and the same partitioner calls; and the copy of kafkajs's client that uses it leaves kafkajs's own modules
 * as they were for everyone else.
 */
import { createRequire } from 'node:module';
import kafkajs from 'kafkajs';
import { describe, expect, test } from 'vitest';
import { prng } from '../../producer/syntheticEvents.ts';
import { kafkaClient, kafkajsGrouping, leanGrouping, leanGroupingClient, type Grouping, type GroupingInput } from '../../runtime/kafkajsGrouping.ts';

const require = createRequire(import.meta.url);
const original = kafkajsGrouping();

/** The grouping's answer and every call its partitioner got. */
function run(grouping: Grouping, input: Omit<GroupingInput, 'partitioner'>, answers: readonly unknown[]) {
  const calls: unknown[] = [];
  let i = 0;
  try {
    const result = grouping({
      ...input,
      partitioner: (call) => {
        calls.push(call);
        return answers[i++ % answers.length];
      },
    });
    return { result, keys: Object.keys(result), calls, threw: undefined };
  } catch (error) {
    // ("constructor": the key finds Object's constructor, and both fail to spread it.)
    return { result: {} as Record<string, unknown[]>, keys: [], calls, threw: (error as Error).constructor.name };
  }
}

describe('lean kafkajs grouping', () => {
  test("2,000 random sends: kafkajs's groups, in its order, from the same partitioner calls", () => {
    const rand = prng(23);
    const pick = <T>(xs: readonly T[]) => xs[Math.floor(rand() * xs.length)]!;
    const odd = ['7', 'a', undefined, Number.NaN, -1, 1.5, null, 'constructor'];
    let oddOnes = 0;
    let thrown = 0;
    for (let s = 0; s < 2000; s++) {
      const partitionMetadata = Array.from({ length: pick([0, 1, 3, 12]) }, (_, p) => ({ partitionId: p }));
      const messages = Array.from({ length: pick([0, 1, 2, 7, 50, 300]) }, (_, m) => ({ key: `k${m}`, value: `v${m}` }));
      const count = Math.max(partitionMetadata.length, 1);
      const answers = Array.from({ length: pick([1, 5, 40]) }, () => (rand() < 0.05 ? pick(odd) : Math.floor(rand() * count)));
      oddOnes += answers.some((a) => typeof a !== 'number' || !Number.isInteger(a) || a < 0) ? 1 : 0;
      const input = { topic: `t${s}`, partitionMetadata, messages };
      const lean = run(leanGrouping, input, answers);
      const theirs = run(original, input, answers);
      if (theirs.threw !== undefined) thrown++;
      expect(lean.threw).toBe(theirs.threw);
      expect(lean.keys).toEqual(theirs.keys);
      expect(lean.result).toEqual(theirs.result);
      for (const k of theirs.keys) lean.result[k]!.forEach((m, i) => expect(m).toBe(theirs.result[k]![i])); // the messages themselves
      expect(lean.calls).toEqual(theirs.calls);
      lean.calls.forEach((c, i) => expect((c as { message: unknown }).message).toBe(messages[i]));
    }
    expect(oddOnes).toBeGreaterThan(50); // the odd answers were met, not only kafkajs's numbers
    expect(thrown).toBeGreaterThan(5);
  });

  test('no partitions known: nothing grouped, the partitioner not called', () => {
    const lean = run(leanGrouping, { topic: 't', partitionMetadata: [], messages: [{ value: 'x' }] }, [0]);
    expect(lean).toEqual({ result: {}, keys: [], calls: [], threw: undefined });
  });

  test("the client copy groups with it; kafkajs's own modules stay what require('kafkajs') gives everyone else", () => {
    expect(leanGroupingClient()).toBe('lean');
    const Client = kafkaClient();
    expect(Client).not.toBe(kafkajs.Kafka);
    expect(typeof new Client({ brokers: ['127.0.0.1:1'] }).producer().send).toBe('function');
    expect((require('kafkajs') as typeof kafkajs).Kafka).toBe(kafkajs.Kafka);
    expect(require('kafkajs/src/index.js')).toBe(kafkajs.Kafka);
    expect(require('kafkajs/src/producer/groupMessagesPerPartition.js')).toBe(original);
    expect(original).not.toBe(leanGrouping);
    expect(String(original)).toContain('[...current, message]');
  });
});
