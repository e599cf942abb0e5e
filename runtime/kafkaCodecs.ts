/**
 * Kafka's compression codecs for kafkajs, so a consumer reads whatever any producer wrote and the SDK can write
 * any of them. kafkajs builds in GZIP only and keeps codecs in one process-wide table: `registerKafkaCodecs()`
 * fills it, and `createKafka()` (runtime/kafka.ts) calls it, so every process that talks to Kafka has all of them.
 *
 * | id | codec  | from                                                                                     |
 * |----|--------|------------------------------------------------------------------------------------------|
 * | 1  | gzip   | kafkajs's own (node:zlib)                                                                |
 * | 2  | snappy | `snappy` (napi-rs; prebuilt binaries as npm packages, no install script). Reads a raw     |
 * |    |        | block (librdkafka) and snappy-java's framing (the Java client); writes the framing, as    |
 * |    |        | the Java client does, which every client reads (snappyFraming.ts)                         |
 * | 3  | lz4    | `lz4-napi` (LZ4 frame format, which Kafka uses since message format v1)                    |
 * | 4  | zstd   | `zstd-napi` (libzstd 1.5.7; builds from its bundled sources when no prebuilt binary can be |
 * |    |        | fetched: nothing downloaded at install). Level 3, the Java client's default. Loaded at the |
 * |    |        | first zstd batch: the SDK package lists it as an optional peer (loadCodec)               |
 * | 5-7| —      | no codec has these ids yet. kafkajs would read such a batch as if uncompressed (garbage):  |
 * |    |        | they are refused instead                                                                  |
 *
 * A batch that cannot be read (an unknown codec, or bytes its codec cannot decompress) fails the fetch with an
 * UnreadableBatchError, which is not retriable: the consumer stops without committing, as kafkajs delivers none of
 * that fetch's batches.
 */
import kafkajs from 'kafkajs';
import { compressFrameSync, decompressFrame } from 'lz4-napi';
import { compressSync as snappyCompress, uncompressSync as snappyUncompress } from 'snappy';
import { ApilogError, ConfigError, describeError } from './errors.ts';
import { XERIAL_BLOCK_SIZE, isXerialFramed, xerialBlocks, xerialFrame } from './snappyFraming.ts';

// kafkajs is CommonJS; its codec table is reachable through the default export only.
const { CompressionCodecs, CompressionTypes } = kafkajs;

export type CompressionName = 'none' | 'gzip' | 'snappy' | 'lz4' | 'zstd';

export const COMPRESSIONS: readonly CompressionName[] = ['none', 'gzip', 'snappy', 'lz4', 'zstd'];

/** Kafka's codec ids: the low three bits of a record batch's attributes. */
export const CODEC_IDS: Readonly<Record<Exclude<CompressionName, 'none'>, number>> = { gzip: 1, snappy: 2, lz4: 3, zstd: 4 };

/** The name of a codec id, or `codec id N` for one no codec has yet. */
export function codecName(id: number): string {
  for (const [name, codecId] of Object.entries(CODEC_IDS)) if (codecId === id) return name;
  return `codec id ${id}`;
}

/** A record batch this process cannot decompress. Never retriable: the same bytes fail the same way. */
export class UnreadableBatchError extends ApilogError {
  /** The codec's name, or `codec id N`. */
  readonly codec: string;
  constructor(codec: string, reason: string, cause?: unknown) {
    super(`a record batch compressed with ${codec} cannot be read: ${reason}`, { retriable: false, cause });
    this.codec = codec;
  }
}

/** The UnreadableBatchError behind an error kafkajs wrapped (KafkaJSNonRetriableError keeps it as its cause). */
export function unreadableBatchIn(error: unknown): UnreadableBatchError | undefined {
  for (let e = error, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    if (e instanceof UnreadableBatchError) return e;
  }
  return undefined;
}

interface Codec {
  compress(encoder: { buffer: Buffer }): Promise<Buffer>;
  decompress(buffer: Buffer): Promise<Buffer>;
}

/** The codec's decompress, with any failure turned into an UnreadableBatchError (kafkajs would retry a plain Error forever). */
function reading(name: string, compress: Codec['compress'], decompress: (buffer: Buffer) => Buffer | Promise<Buffer>): () => Codec {
  const codec: Codec = {
    compress,
    async decompress(buffer) {
      try {
        return await decompress(buffer);
      } catch (error) {
        throw new UnreadableBatchError(name, `${name} could not decompress ${buffer.length} bytes: ${describeError(error)}`, error);
      }
    },
  };
  return () => codec;
}

function snappyWrite(data: Buffer): Buffer {
  const blocks: Buffer[] = [];
  for (let at = 0; at < data.length; at += XERIAL_BLOCK_SIZE) blocks.push(snappyCompress(data.subarray(at, at + XERIAL_BLOCK_SIZE)));
  return xerialFrame(blocks);
}

function snappyRead(data: Buffer): Buffer {
  if (!isXerialFramed(data)) return snappyUncompress(data) as Buffer;
  const blocks = xerialBlocks(data);
  return blocks.length === 1 ? (snappyUncompress(blocks[0]!) as Buffer) : Buffer.concat(blocks.map((b) => snappyUncompress(b) as Buffer));
}

/** The codecs this process reads (all four, unless a crash test refused one). */
const readable = new Set<string>(Object.keys(CODEC_IDS));

/** A codec id this process cannot read: looking it up fails (kafkajs looks a codec up once per record batch). */
function refusing(id: number): () => Codec {
  return () => {
    throw new UnreadableBatchError(codecName(id), `Kafka codec id ${id} is not one this consumer reads (it reads ${[...readable].join(', ')})`);
  };
}

type Zstd = typeof import('zstd-napi');
let zstd: Promise<Zstd> | undefined;

/**
 * zstd-napi, imported the first time a zstd batch is written or read. The SDK package lists it as an optional peer
 * dependency (its install compiles libzstd when no prebuilt binary can be fetched), so a service that never writes
 * zstd does not install it; the pipeline's own package depends on it.
 */
function zstdModule(): Promise<Zstd> {
  zstd ??= import('zstd-napi').catch((error: unknown) => {
    zstd = undefined;
    throw new ConfigError(`compression zstd needs the package zstd-napi, which is not installed (npm install zstd-napi): ${describeError(error)}`, { cause: error });
  });
  return zstd;
}

/** Loads what a codec needs, so that a missing optional package fails at start-up with a ConfigError, not at the first send. */
export async function loadCodec(name: CompressionName): Promise<void> {
  if (name === 'zstd') await zstdModule();
}

let registered = false;

/** Fills kafkajs's codec table with every Kafka codec (idempotent; per process). */
export function registerKafkaCodecs(): void {
  if (registered) return;
  const table = CompressionCodecs as unknown as Record<number, () => Codec>;
  const gzip = table[CODEC_IDS.gzip]!();
  table[CODEC_IDS.gzip] = reading('gzip', (e) => gzip.compress(e), (b) => gzip.decompress(b));
  table[CODEC_IDS.snappy] = reading('snappy', async (e) => snappyWrite(e.buffer), snappyRead);
  // Synchronous: the async call's hop to the thread pool cost ~2x the compression itself for the SDK's small batches.
  table[CODEC_IDS.lz4] = reading('lz4', async (e) => compressFrameSync(e.buffer), decompressFrame);
  table[CODEC_IDS.zstd] = reading('zstd', async (e) => (await zstdModule()).compress(e.buffer), async (b) => (await zstdModule()).decompress(b));
  for (let id = 5; id <= 7; id++) table[id] = refusing(id);
  registered = true;
}

/**
 * Crash tests only: makes this process read batches in `name` as it reads a codec it does not know, to show what a
 * consumer does with a batch in a codec that comes after it (`apilog consume --refuse-codec`).
 */
export function refuseCodec(name: Exclude<CompressionName, 'none'>): void {
  registerKafkaCodecs();
  readable.delete(name);
  (CompressionCodecs as unknown as Record<number, () => Codec>)[CODEC_IDS[name]] = refusing(CODEC_IDS[name]);
}

/** The kafkajs compression type for a codec name (the codecs registered). */
export function compressionType(name: CompressionName): kafkajs.CompressionTypes {
  registerKafkaCodecs();
  switch (name) {
    case 'none':
      return CompressionTypes.None;
    case 'gzip':
      return CompressionTypes.GZIP;
    case 'snappy':
      return CompressionTypes.Snappy;
    case 'lz4':
      return CompressionTypes.LZ4;
    case 'zstd':
      return CompressionTypes.ZSTD;
    default:
      throw new ConfigError(`compression "${String(name)}" is not one of ${COMPRESSIONS.join(', ')}`);
  }
}
