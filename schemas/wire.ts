/**
 * Confluent schema-registry wire format: byte 0 is the magic byte 0x00, bytes 1-4 the schema id
 * (big-endian, unsigned), then the Avro binary body.
 */
import type { Type } from 'avsc';
import { DecodeError } from '../runtime/errors.ts';
import { NO_ROOM, NOT_WRITTEN, recordWriter, type RecordWriter } from './avroWriter.ts';

export const MAGIC_BYTE = 0;
export const HEADER_SIZE = 5;

/** The schema id of a framed message. Throws DecodeError for anything that is not a frame. */
export function frameSchemaId(message: Buffer | null): number {
  if (message === null || message.length < HEADER_SIZE) {
    throw new DecodeError('too-short', `message of ${message?.length ?? 0} bytes is shorter than the 5-byte Confluent header`);
  }
  if (message[0] !== MAGIC_BYTE) {
    throw new DecodeError('bad-magic-byte', `magic byte is 0x${message[0]!.toString(16).padStart(2, '0')}, expected 0x00`);
  }
  return schemaIdOf(message);
}

/** The 4-byte big-endian schema id of a message already known to be a frame (readUInt32BE(1), inlined: per message). */
export function schemaIdOf(frame: Buffer): number {
  return ((frame[1]! << 24) | (frame[2]! << 16) | (frame[3]! << 8) | frame[4]!) >>> 0;
}

/** Frames an Avro body. */
export function frame(schemaId: number, body: Buffer): Buffer {
  const out = Buffer.allocUnsafe(HEADER_SIZE + body.length);
  out[0] = MAGIC_BYTE;
  out.writeUInt32BE(schemaId, 1);
  body.copy(out, HEADER_SIZE);
  return out;
}

/**
 * Encodes values of one Avro type into framed messages, through one scratch buffer that grows as needed:
 * one allocation per message (the message itself), none for intermediate bodies. Records of the API-call schemas'
 * field types go through avroWriter.ts (the same bytes, faster), anything it leaves through avsc.
 */
export class FramedEncoder<T> {
  private scratch: Buffer;
  private readonly writer: RecordWriter | undefined;
  constructor(
    private readonly type: Type,
    readonly schemaId: number,
    initialSize = 4096,
  ) {
    this.scratch = Buffer.allocUnsafe(initialSize);
    this.scratch[0] = MAGIC_BYTE;
    this.scratch.writeUInt32BE(schemaId, 1);
    this.writer = recordWriter(type);
  }

  encode(value: T): Buffer {
    let end = this.writer === undefined ? NOT_WRITTEN : this.writer(value as object, this.scratch, HEADER_SIZE);
    while (end === NO_ROOM) {
      this.grow(this.scratch.length * 2);
      end = this.writer!(value as object, this.scratch, HEADER_SIZE);
    }
    if (end < 0) {
      end = this.type.encode(value, this.scratch, HEADER_SIZE);
      while (end < 0) {
        // avsc returns -(bytes missing) when the buffer is too small.
        this.grow(Math.max(this.scratch.length * 2, this.scratch.length - end));
        end = this.type.encode(value, this.scratch, HEADER_SIZE);
      }
    }
    return Buffer.from(this.scratch.subarray(0, end));
  }

  private grow(size: number): void {
    const grown = Buffer.allocUnsafe(size);
    this.scratch.copy(grown, 0, 0, HEADER_SIZE);
    this.scratch = grown;
  }
}
