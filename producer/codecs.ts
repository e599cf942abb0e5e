/**
 * Compression codecs for kafkajs. GZIP is built into kafkajs; LZ4 comes from `lz4-napi` (napi-rs bindings to
 * lz4_flex, shipped as prebuilt binaries: no install script, no compiler). Kafka's LZ4 is the standard LZ4
 * frame format, which `compressFrame`/`decompressFrame` read and write.
 *
 * kafkajs keeps codecs in one process-wide table, so registering here also lets every consumer in the same
 * process read LZ4 batches. A consumer process that reads topics written with LZ4 must call
 * `registerLz4Codec()` once at start-up.
 */
import kafkajs from 'kafkajs';

// kafkajs is CommonJS; its codec table is reachable through the default export only.
const { CompressionCodecs, CompressionTypes } = kafkajs;
import { compressFrame, decompressFrame } from 'lz4-napi';
import { ConfigError } from '../runtime/errors.ts';

export type CompressionName = 'none' | 'gzip' | 'lz4';

export const COMPRESSIONS: readonly CompressionName[] = ['none', 'gzip', 'lz4'];

let lz4Registered = false;

/** Adds the LZ4 codec to kafkajs's codec table (idempotent). */
export function registerLz4Codec(): void {
  if (lz4Registered) return;
  CompressionCodecs[CompressionTypes.LZ4] = () => ({
    compress: async (encoder: { buffer: Buffer }) => compressFrame(encoder.buffer),
    decompress: async (buffer: Buffer) => decompressFrame(buffer),
  });
  lz4Registered = true;
}

/** The kafkajs compression type for a codec name, registering the codec when it is not built in. */
export function compressionType(name: CompressionName): kafkajs.CompressionTypes {
  switch (name) {
    case 'none':
      return CompressionTypes.None;
    case 'gzip':
      return CompressionTypes.GZIP;
    case 'lz4':
      registerLz4Codec();
      return CompressionTypes.LZ4;
    default:
      throw new ConfigError(`compression "${String(name)}" is not one of ${COMPRESSIONS.join(', ')}`);
  }
}
