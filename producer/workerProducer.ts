/**
 * `createApiLogger({ worker: true })`: the logger keeps its queue, validation, Avro encoding, batching, retries,
 * spool and counters on the calling thread, and hands each encoded batch to a worker thread (sendWorker.ts) that
 * owns the kafkajs producer. kafkajs's per-record encoding, compression and network I/O, most of what logging costs
 * a service per event (docs/performance.md), then run beside the service's event loop instead of on it.
 *
 * WorkerProducer stands in for the kafkajs Producer the logger calls (connect, send, disconnect). The sends of one
 * batch (one per partition, made at once) cross in one postMessage, and answers finished together come back in one;
 * a partition's messages cross as a few typed arrays and one buffer of values, transferred, not copied. Errors come back as plain objects with the fields the logger's retry loop reads (name,
 * message, kafkajs's `type`, `retriable`, `code`, the cause chain). If the worker dies, pending sends fail as
 * retriable and the next connect starts a new one (a new idempotent producer: as after a process restart, a batch
 * that had landed unacknowledged may be stored twice).
 */
import { Worker } from 'node:worker_threads';
import type { CompressionTypes, Message, RecordMetadata } from 'kafkajs';
import { ApilogError } from '../runtime/errors.ts';
import type { Logger } from '../runtime/log.ts';

export interface SendWorkerInit {
  readonly brokers: readonly string[];
  readonly clientId: string;
  readonly connectionTimeoutMs: number;
  /** kafkajs's own retries of a send before it reports the failure. */
  readonly sendRetries: number;
  /** The calling thread's logger level, when there is a logger: kafkajs's lines are sent back at it. */
  readonly logLevel?: string;
}

export type ToSendWorker =
  | { readonly op: 'connect'; readonly id: number }
  | { readonly op: 'disconnect'; readonly id: number }
  | {
      readonly op: 'send';
      readonly id: number;
      readonly topic: string;
      readonly compression: number;
      /** Each distinct key once (a batch holds few APIs), and per message the index of its key (-1: none). */
      readonly keyTable: readonly string[];
      readonly keyIndex: Int32Array;
      readonly partitions: Int32Array;
      /** End offset of each value in `values`. */
      readonly ends: Uint32Array;
      readonly values: ArrayBuffer;
    };

export interface SerializedError {
  readonly name: string;
  readonly message: string;
  readonly type?: string;
  readonly code?: string | number;
  readonly retriable?: boolean;
  readonly cause?: SerializedError;
}

export type FromSendWorker =
  | { readonly op: 'done'; readonly id: number }
  | { readonly op: 'failed'; readonly id: number; readonly error: SerializedError }
  | { readonly op: 'log'; readonly level: 'error' | 'warn' | 'info' | 'debug'; readonly obj: Record<string, unknown>; readonly msg: string }
  | { readonly op: 'sendFailure'; readonly retryCount: number };

/** An error (and what it wraps, kafkajs's `originalError` included) as a plain object. */
export function serializeError(error: unknown, depth = 0): SerializedError {
  if (!(error instanceof Error)) return { name: 'Error', message: String(error) };
  const e = error as Error & { type?: unknown; code?: unknown; retriable?: unknown; originalError?: unknown };
  const inner = e.cause ?? e.originalError;
  return {
    name: e.name,
    message: e.message,
    ...(typeof e.type === 'string' ? { type: e.type } : {}),
    ...(typeof e.code === 'string' || typeof e.code === 'number' ? { code: e.code } : {}),
    ...(typeof e.retriable === 'boolean' ? { retriable: e.retriable } : {}),
    ...(inner !== undefined && depth < 4 ? { cause: serializeError(inner, depth + 1) } : {}),
  };
}

/** The error again, on this side: an Error with the same name, message and fields. */
export function deserializeError(s: SerializedError): Error {
  const error = new Error(s.message, s.cause ? { cause: deserializeError(s.cause) } : undefined);
  error.name = s.name;
  Object.assign(error, {
    ...(s.type !== undefined ? { type: s.type } : {}),
    ...(s.code !== undefined ? { code: s.code } : {}),
    ...(s.retriable !== undefined ? { retriable: s.retriable } : {}),
  });
  return error;
}

/**
 * The worker's script: the compiled .js beside this module in the package; from the .ts sources (tests, benchmarks),
 * a bootstrap that registers tsx's loader in the worker first (a worker's execArgv does not reach every runner).
 */
function startWorker(init: SendWorkerInit): Worker {
  // Beside this module, with its extension, built from this module's URL by hand: bundlers and Vite rewrite the
  // usual relative-URL-from-import.meta form as an asset, and the file differs between the sources and the build.
  const here = import.meta.url;
  const fromSource = here.endsWith('.ts');
  const script = new URL(`${here.slice(0, here.lastIndexOf('/') + 1)}sendWorker${fromSource ? '.ts' : '.js'}`);
  if (!fromSource) return new Worker(script, { workerData: init });
  const source = script.href;
  const bootstrap = `import('tsx/esm/api').then(({ register }) => { register(); return import(${JSON.stringify(source)}); });`;
  return new Worker(bootstrap, { eval: true, workerData: init });
}

/**
 * What one side queues for the other during one turn of its event loop, handed over at the end of that turn in one
 * call (each postMessage wakes the other thread). Both sides use it: calls one way, answers the other.
 */
export class TurnBatch<T> {
  private items: T[] = [];
  private transfers: ArrayBuffer[] = [];

  constructor(private readonly handOver: (items: T[], transfers: ArrayBuffer[]) => void) {}

  push(item: T, transfer?: readonly ArrayBuffer[]): void {
    if (transfer !== undefined) for (const t of transfer) this.transfers.push(t);
    if (this.items.push(item) === 1) queueMicrotask(this.drain);
  }

  /** Drops what is queued (the other side is gone). */
  clear(): void {
    this.items = [];
    this.transfers = [];
  }

  private readonly drain = (): void => {
    const { items, transfers } = this;
    if (items.length === 0) return; // cleared in between
    this.clear();
    this.handOver(items, transfers);
  };
}

/** A message as the caller gives it: call() numbers it. */
type Unnumbered<M> = M extends unknown ? Omit<M, 'id'> : never;

interface Pending {
  resolve(): void;
  reject(error: Error): void;
}

export class WorkerProducer {
  private worker: Worker | undefined;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();

  constructor(
    private readonly init: SendWorkerInit,
    private readonly logger: Logger | undefined,
    private readonly onSendFailure: (retryCount: number) => void,
  ) {}

  async connect(): Promise<void> {
    await this.call({ op: 'connect' });
  }

  /** Sends one partition's messages (the logger sends one partition per call: partitionedSend.ts). */
  async send(record: { topic: string; acks?: number; compression?: CompressionTypes; messages: Message[] }): Promise<RecordMetadata[]> {
    const { messages } = record;
    // Typed arrays and a few strings: what the structured clone copies fastest (a string per message cost more
    // than the rest of the hand-over).
    const keyTable: string[] = [];
    const keyIndex = new Int32Array(messages.length);
    const partitions = new Int32Array(messages.length);
    const ends = new Uint32Array(messages.length);
    let lastKey: string | undefined;
    let lastIndex = -1;
    let total = 0;
    for (let i = 0; i < messages.length; i++) total += (messages[i]!.value as Buffer).length;
    const values = new Uint8Array(total);
    let at = 0;
    for (let i = 0; i < messages.length; i++) {
      const m = messages[i]!;
      const value = m.value as Buffer;
      values.set(value, at);
      at += value.length;
      ends[i] = at;
      const key = typeof m.key === 'string' ? m.key : m.key == null ? undefined : m.key.toString('utf8');
      if (key === undefined) keyIndex[i] = -1;
      else {
        if (key !== lastKey) {
          lastIndex = keyTable.indexOf(key);
          if (lastIndex < 0) lastIndex = keyTable.push(key) - 1;
          lastKey = key;
        }
        keyIndex[i] = lastIndex;
      }
      partitions[i] = m.partition!;
    }
    await this.call(
      { op: 'send', topic: record.topic, compression: record.compression ?? 0, keyTable, keyIndex, partitions, ends, values: values.buffer },
      [values.buffer, keyIndex.buffer, partitions.buffer, ends.buffer],
    );
    return [];
  }

  async disconnect(): Promise<void> {
    const worker = this.worker;
    if (worker === undefined) return;
    try {
      await this.call({ op: 'disconnect' });
    } finally {
      this.worker = undefined;
      await worker.terminate();
    }
  }

  private start(): Worker {
    const worker = startWorker(this.init);
    worker.on('message', (answers: FromSendWorker[]) => {
      for (const m of answers) this.receive(m);
    });
    const lost = (why: string) => {
      if (this.worker === worker) this.worker = undefined;
      const error = new ApilogError(`apilog: the send worker ${why}`, { retriable: true });
      for (const p of this.pending.values()) p.reject(error);
      this.pending.clear();
      this.outbox.clear();
    };
    worker.on('error', (error) => lost(`failed: ${error.message}`));
    worker.on('exit', (code) => lost(`exited (code ${code})`));
    return worker;
  }

  /**
   * Posts a message to the worker; resolves with its outcome. Messages posted in the same turn of the event loop
   * (the logger sends a batch's partitions all at once) go as one postMessage: each crossing wakes the worker.
   */
  private call(message: Unnumbered<ToSendWorker>, transfer?: ArrayBuffer[]): Promise<void> {
    this.worker ??= this.start();
    const id = this.nextId++;
    return new Promise<void>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.outbox.push({ ...message, id } as ToSendWorker, transfer);
    });
  }

  private readonly outbox = new TurnBatch<ToSendWorker>((messages, transfers) => {
    // The worker died in between: lost() has failed these calls already.
    this.worker?.postMessage(messages, transfers);
  });

  private receive(m: FromSendWorker): void {
    switch (m.op) {
      case 'done':
      case 'failed': {
        const p = this.pending.get(m.id);
        if (p === undefined) return;
        this.pending.delete(m.id);
        if (m.op === 'done') p.resolve();
        else p.reject(deserializeError(m.error));
        return;
      }
      case 'log':
        this.logger?.[m.level](m.obj, m.msg);
        return;
      case 'sendFailure':
        this.onSendFailure(m.retryCount);
    }
  }
}
