/**
 * snappy-java's stream framing ("xerial"), which the Java Kafka client writes for `compression.type=snappy`:
 *
 *   magic 0x82 'S' 'N' 'A' 'P' 'P' 'Y' 0x00 | version int32 BE | compatible version int32 BE
 *   then blocks: compressed length int32 BE | one raw snappy block
 *
 * librdkafka (Python, Go, .NET, PHP clients) writes one raw snappy block instead, without framing. A reader must
 * take both; this module splits and builds the framing, the codec (kafkaCodecs.ts) does the snappy itself.
 */

export const XERIAL_MAGIC: Buffer = Buffer.from([0x82, 0x53, 0x4e, 0x41, 0x50, 0x50, 0x59, 0x00]);
export const XERIAL_HEADER_SIZE = 16;
/** The versions snappy-java writes (SnappyCodec: DEFAULT_VERSION 1, MINIMUM_COMPATIBLE_VERSION 1). */
const XERIAL_VERSION = 1;
/** The uncompressed size of one block in snappy-java's SnappyOutputStream (32 KiB). */
export const XERIAL_BLOCK_SIZE = 32 * 1024;

/** True when `data` starts with snappy-java's stream header. */
export function isXerialFramed(data: Buffer): boolean {
  return data.length >= XERIAL_HEADER_SIZE && data.compare(XERIAL_MAGIC, 0, XERIAL_MAGIC.length, 0, XERIAL_MAGIC.length) === 0;
}

/** The raw snappy blocks of a framed buffer, in order (views, not copies). Throws on a truncated block. */
export function xerialBlocks(data: Buffer): Buffer[] {
  const blocks: Buffer[] = [];
  let at = XERIAL_HEADER_SIZE;
  while (at < data.length) {
    if (at + 4 > data.length) throw new Error(`snappy-java framing: ${data.length - at} bytes left where a 4-byte block length belongs`);
    const length = data.readUInt32BE(at);
    at += 4;
    if (at + length > data.length) throw new Error(`snappy-java framing: block of ${length} bytes at ${at - 4}, only ${data.length - at} left`);
    blocks.push(data.subarray(at, at + length));
    at += length;
  }
  return blocks;
}

/** Frames raw snappy blocks as snappy-java does. */
export function xerialFrame(blocks: readonly Buffer[]): Buffer {
  let size = XERIAL_HEADER_SIZE;
  for (const b of blocks) size += 4 + b.length;
  const out = Buffer.allocUnsafe(size);
  XERIAL_MAGIC.copy(out, 0);
  out.writeInt32BE(XERIAL_VERSION, 8);
  out.writeInt32BE(XERIAL_VERSION, 12);
  let at = XERIAL_HEADER_SIZE;
  for (const b of blocks) {
    out.writeUInt32BE(b.length, at);
    b.copy(out, at + 4);
    at += 4 + b.length;
  }
  return out;
}
