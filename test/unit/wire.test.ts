import { describe, expect, it } from 'vitest';
import { DecodeError } from '../../runtime/errors.ts';
import { apiCallTypeV1, type ApiCallEvent } from '../../schemas/apiCall.ts';
import { FramedEncoder, HEADER_SIZE, frame, frameSchemaId } from '../../schemas/wire.ts';
import { SyntheticEvents } from '../../producer/syntheticEvents.ts';

describe('Confluent wire framing', () => {
  it('writes magic byte 0, the schema id big-endian, then the body', () => {
    const framed = frame(0x01020304, Buffer.from([0xaa, 0xbb]));
    expect([...framed]).toEqual([0x00, 0x01, 0x02, 0x03, 0x04, 0xaa, 0xbb]);
  });

  it('reads the schema id back, including ids above 2^31', () => {
    expect(frameSchemaId(frame(7, Buffer.alloc(0)))).toBe(7);
    expect(frameSchemaId(frame(0xfffffffe, Buffer.from([1])))).toBe(0xfffffffe);
  });

  it('rejects a wrong magic byte and short messages with a reason', () => {
    const bad = Buffer.from([0x01, 0, 0, 0, 1, 2]);
    expect(() => frameSchemaId(bad)).toThrowError(DecodeError);
    try {
      frameSchemaId(bad);
    } catch (e) {
      expect((e as DecodeError).reason).toBe('bad-magic-byte');
    }
    for (const short of [null, Buffer.alloc(0), Buffer.from([0, 0, 0, 1])]) {
      try {
        frameSchemaId(short);
        expect.unreachable();
      } catch (e) {
        expect((e as DecodeError).reason).toBe('too-short');
      }
    }
  });

  it('FramedEncoder output equals header + avsc toBuffer, for small and growing buffers', () => {
    const events = new SyntheticEvents({ seed: 3 }).take(50);
    const big: ApiCallEvent = { ...events[0]!, error_message: 'x'.repeat(10_000), attributes: { k: 'v'.repeat(5000) } };
    const encoder = new FramedEncoder<ApiCallEvent>(apiCallTypeV1, 42, 16);
    for (const event of [...events, big, events[1]!]) {
      const framed = encoder.encode(event);
      expect(framed.subarray(0, HEADER_SIZE)).toEqual(Buffer.from([0, 0, 0, 0, 42]));
      expect(framed.subarray(HEADER_SIZE)).toEqual(apiCallTypeV1.toBuffer(event));
      expect(apiCallTypeV1.fromBuffer(framed.subarray(HEADER_SIZE))).toEqual(event);
    }
  });
});
