/**
 * kafkajs 2.2.4 groups each send's messages by partition with `[...current, message]` per message: every message
 * copies the array of the messages before it to its partition, so a send of n messages to one partition copies
 * n²/2 elements (620 ns per message at 200 per send, 1,100 at 1,000, measured here). The SDK sends one partition per
 * send (producer/partitionedSend.ts), so its sends are all that case. A CPU profile of the middleware bench's service
 * put this grouping first among kafkajs's functions.
 *
 * `leanGrouping` is the same function in one pass: the same partitioner calls with the same arguments, in the same
 * order, and the same object of arrays (a unit test compares the two on random sends). Only the arrays are built by
 * push instead of copies.
 *
 * kafkajs's send takes the grouping function when its producer modules load, as a module constant, and they load
 * with kafkajs itself. So the change cannot be a swap in the module cache, as for the modules kafkajs loads later
 * (kafkajsRecords.ts). Instead, `kafkaClient()` loads a second copy of the four modules from kafkajs's client class
 * down to the send (src/index.js, its producer factory, message producer and send), with the lean grouping in the
 * module cache in place of kafkajs's while they load. Afterwards, the cache holds kafkajs's own modules again, so
 * `require('kafkajs')` anywhere else is as it was. Every other module (the cluster, brokers, protocol, errors,
 * consumer, admin) is the one copy both clients share: the copy differs from kafkajs's only in the grouping.
 * `createKafka()` makes its clients from that copy.
 *
 * It applies to kafkajs 2.2.4 only, checked by version and by each module's source; with any other kafkajs, or with
 * APILOG_KAFKAJS_RECORDS=keep (kafkajs's producer as it ships, records and grouping), kafkajs's own class is used.
 */
import { createRequire, Module } from 'node:module';
import { readFileSync } from 'node:fs';
import kafkajs from 'kafkajs';
import { isKafkajs224 } from './kafkajsModules.ts';

const require = createRequire(import.meta.url);

type KafkaClass = typeof kafkajs.Kafka;

/** What kafkajs's grouping takes (its partitioner is called with the first three). */
export interface GroupingInput {
  readonly topic: string;
  readonly partitionMetadata: readonly unknown[];
  readonly messages: readonly unknown[];
  readonly partitioner: (input: { topic: string; partitionMetadata: readonly unknown[]; message: unknown }) => unknown;
}
export type Grouping = (input: GroupingInput) => Record<string, unknown[]>;

const GROUPING = 'kafkajs/src/producer/groupMessagesPerPartition.js';

/**
 * The modules loaded again, each with what its kafkajs 2.2.4 source holds: the one it takes the next from, at load.
 * Outermost first.
 */
const CHAIN: readonly (readonly [module: string, mark: string])[] = [
  ['kafkajs/src/index.js', "const createProducer = require('./producer')"],
  ['kafkajs/src/producer/index.js', "const createMessageProducer = require('./messageProducer')"],
  ['kafkajs/src/producer/messageProducer.js', "const createSendMessages = require('./sendMessages')"],
  ['kafkajs/src/producer/sendMessages.js', "const groupMessagesPerPartition = require('./groupMessagesPerPartition')"],
  [GROUPING, '[...current, message]'],
];

/** kafkajs's grouping, in one pass. */
export const leanGrouping: Grouping = ({ topic, partitionMetadata, messages, partitioner }) => {
  if (partitionMetadata.length === 0) return {};
  const result: Record<string, unknown[]> = {};
  // kafkajs's send has already read every message (it looks for one without a value), so the array has no holes.
  for (let i = 0; i < messages.length; i++) {
    const message = messages[i];
    const partition = partitioner({ topic, partitionMetadata, message }) as number;
    // As kafkajs's `result[partition] || []` then a spread: a key that finds something not an array (a custom
    // partitioner answering "constructor") fails here too, with a TypeError.
    const current = result[partition];
    if (current === undefined) result[partition] = [message];
    else current.push(message);
  }
  return result;
};

/** kafkajs's own grouping (the module as kafkajs ships it). */
export function kafkajsGrouping(): Grouping {
  return require(GROUPING) as Grouping;
}

export type GroupingState = 'lean' | 'kept: other kafkajs' | 'kept: by APILOG_KAFKAJS_RECORDS';
let state: GroupingState | undefined;
let client: KafkaClass = kafkajs.Kafka;

/** Loads the copy of kafkajs's client with the lean grouping (once per process); its state. */
export function leanGroupingClient(): GroupingState {
  if (state !== undefined) return state;
  if (process.env['APILOG_KAFKAJS_RECORDS'] === 'keep') return (state = 'kept: by APILOG_KAFKAJS_RECORDS');
  // Another kafkajs may not have these modules: their paths are resolved once the version is known.
  let paths: string[] = [];
  const sources = () => {
    paths = CHAIN.map(([module]) => require.resolve(module));
    return paths.map((p) => readFileSync(p, 'utf8')).join('\n');
  };
  if (!isKafkajs224(sources, CHAIN.map(([, mark]) => mark))) return (state = 'kept: other kafkajs');
  const saved = paths.map((p) => require.cache[p]);
  try {
    for (const p of paths) delete require.cache[p];
    const grouping = new Module(paths.at(-1)!);
    grouping.filename = paths.at(-1)!;
    grouping.loaded = true;
    grouping.exports = leanGrouping;
    require.cache[grouping.filename] = grouping;
    client = require(paths[0]!) as KafkaClass;
  } finally {
    paths.forEach((p, i) => {
      if (saved[i] === undefined) delete require.cache[p];
      else require.cache[p] = saved[i];
    });
  }
  return (state = 'lean');
}

/** The client class createKafka() makes its clients from: kafkajs's, or its copy with the lean grouping. */
export function kafkaClient(): KafkaClass {
  leanGroupingClient();
  return client;
}
