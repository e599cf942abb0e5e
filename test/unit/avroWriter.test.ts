/**
 * The flat-record writer (schemas/avroWriter.ts) against avsc, byte for byte, on both API-call schema versions:
 * random events with strings at every length boundary (ASCII and not), longs and ints at every varint and
 * arithmetic boundary, nulls, missing fields with and without defaults, maps; in buffers of every size up to the
 * event's. What it leaves to avsc is only what it must (a non-ASCII string, a value avsc refuses), and avsc's error
 * reaches the caller.
 */
import avro from 'avsc';
import { describe, expect, test } from 'vitest';
import { prng } from '../../producer/syntheticEvents.ts';
import { NO_ROOM, NOT_WRITTEN, recordWriter } from '../../schemas/avroWriter.ts';
import { apiCallTypeV1, apiCallTypeV2 } from '../../schemas/apiCall.ts';
import { FramedEncoder, HEADER_SIZE } from '../../schemas/wire.ts';

const rand = prng(29);
const pick = <T>(xs: readonly T[]) => xs[Math.floor(rand() * xs.length)]!;
const ascii = (n: number) => Array.from({ length: n }, () => String.fromCharCode(32 + Math.floor(rand() * 95))).join('');
const LENGTHS = [0, 1, 2, 10, 30, 62, 63, 64, 65, 127, 128, 300];
const LONG_LENGTHS = [8191, 8192, 8200];
const NOT_ASCII = ['é', '🚀', '\u0080', '\u07ff', '\u0800', '\uffff', '\ud800', '\udc00'];
/** A string, ASCII or (sometimes) with one character beyond it. */
const text = () => {
  const s = ascii(pick(rand() < 0.01 ? LONG_LENGTHS : LENGTHS));
  if (rand() >= 0.02) return s;
  const at = Math.floor(rand() * (s.length + 1));
  return s.slice(0, at) + pick(NOT_ASCII) + s.slice(at);
};
const LONGS = [0, 1, -1, 63, -64, 64, -65, 8191, 8192, 1_073_741_823, 1_073_741_824, -1_073_741_824, -1_073_741_825, 2 ** 31, -(2 ** 31), 2 ** 35 + 7, 1_796_693_396_395, 9_007_199_254_740_990, -9_007_199_254_740_990];
const INTS = [0, 1, -1, 63, -64, 64, 1_073_741_823, 1_073_741_824, -1_073_741_825, 2 ** 31 - 1, -(2 ** 31)];
const nullable = <T>(value: () => T) => (rand() < 0.3 ? null : value());
const optional = <T>(value: () => T) => (rand() < 0.2 ? undefined : value());

function randomEvent(v2: boolean): Record<string, unknown> {
  const attributes: Record<string, string> = {};
  for (let i = pick([0, 0, 1, 2, 5]); i > 0; i--) attributes[pick([ascii(pick([1, 10, 70])), text()])] = text();
  const event: Record<string, unknown> = {
    event_id: ascii(36), ts: pick(LONGS), api: text(), method: pick(['GET', 'POST']), route: text(), path: text(),
    status: pick(INTS), latency_us: pick(LONGS), request_bytes: pick(LONGS), response_bytes: pick(LONGS),
    service: text(), instance: text(), environment: pick(['prod', '', 'dev']),
    client_id: optional(() => nullable(text)), client_ip: nullable(text), user_id: nullable(text), tenant_id: nullable(text),
    trace_id: nullable(text), span_id: nullable(text), error_class: optional(() => nullable(text)), error_message: nullable(text),
    attributes: rand() < 0.1 ? undefined : attributes,
  };
  if (v2) {
    Object.assign(event, {
      protocol: optional(text), region: optional(text), retry_attempt: optional(() => pick(INTS)),
      upstream_latency_us: optional(() => nullable(() => pick(LONGS))), user_agent: optional(() => nullable(text)),
    });
  }
  return event;
}

const isAscii = (x: unknown): boolean =>
  typeof x === 'string' ? /^[\x00-\x7f]*$/.test(x) : x && typeof x === 'object' ? Object.entries(x).every(([k, v]) => isAscii(k) && isAscii(v)) : true;

describe('flat Avro record writer', () => {
  for (const [name, type] of [['version 1', apiCallTypeV1], ['version 2', apiCallTypeV2]] as const) {
    test(`${name}: 2,000 random events, avsc's bytes, in buffers of every size`, () => {
      const write = recordWriter(type)!;
      expect(write).toBeDefined();
      let written = 0;
      for (let i = 0; i < 2000; i++) {
        const event = randomEvent(name === 'version 2');
        const expected = type.toBuffer(event);
        const buf = Buffer.alloc(HEADER_SIZE + expected.length + 64);
        const end = write(event, buf, HEADER_SIZE);
        if (Object.values(event).every(isAscii)) expect(end, 'an ASCII event is written').toBeGreaterThan(0);
        if (end === NOT_WRITTEN) continue;
        written++;
        expect(buf.subarray(HEADER_SIZE, end).equals(expected)).toBe(true);
        if (i % 20 === 0) {
          // Every smaller buffer: no room, never a cut-off event.
          for (let size = HEADER_SIZE; size < HEADER_SIZE + expected.length; size += 1 + Math.floor(size / 64)) {
            expect(write(event, Buffer.alloc(size), HEADER_SIZE)).toBe(NO_ROOM);
          }
        }
      }
      expect(written).toBeGreaterThan(1000);
      expect(written).toBeLessThan(2000); // and some were left to avsc
    });
  }

  test('values avsc refuses are left to it, and FramedEncoder throws its error', () => {
    const base = randomEvent(false);
    const good = Object.fromEntries(Object.entries(base).map(([k, v]) => [k, typeof v === 'string' ? 'ascii' : v === undefined ? null : v])) as Record<string, unknown>;
    good['attributes'] = { a: 'b' };
    const write = recordWriter(apiCallTypeV1)!;
    expect(write(good, Buffer.alloc(4096), HEADER_SIZE)).toBeGreaterThan(0);
    const refused: Record<string, unknown>[] = [
      { status: 1.5 }, { status: 2 ** 31 }, { status: '200' }, { ts: Number.NaN }, { ts: 9_007_199_254_740_991 }, { ts: 1.5 },
      { latency_us: Infinity }, { api: 42 }, { api: undefined }, { client_ip: 7 }, { attributes: [] }, { attributes: null },
      { attributes: { k: 1 } }, { event_id: null },
    ];
    const encoder = new FramedEncoder(apiCallTypeV1, 1);
    for (const change of refused) {
      const event = { ...good, ...change };
      expect(write(event, Buffer.alloc(4096), HEADER_SIZE), JSON.stringify(change)).toBe(NOT_WRITTEN);
      let avscError = '';
      try {
        apiCallTypeV1.toBuffer(event);
      } catch (error) {
        avscError = (error as Error).message;
      }
      expect(avscError, JSON.stringify(change)).not.toBe('');
      expect(() => encoder.encode(event)).toThrow(avscError);
    }
  });

  test('record types with fields it does not take are left to avsc', () => {
    const forSchema = (fields: unknown[]) => avro.Type.forSchema({ type: 'record', name: 'R', fields } as avro.Schema);
    expect(recordWriter(forSchema([{ name: 'a', type: 'double' }]))).toBeUndefined();
    expect(recordWriter(forSchema([{ name: 'a', type: { type: 'record', name: 'In', fields: [] } }]))).toBeUndefined();
    expect(recordWriter(forSchema([{ name: 'a', type: ['null', 'string', 'long'] }]))).toBeUndefined();
    expect(recordWriter(forSchema([{ name: 'a', type: { type: 'map', values: 'long' } }]))).toBeUndefined();
    expect(recordWriter(avro.Type.forSchema('string'))).toBeUndefined();
    const nullSecond = forSchema([{ name: 'a', type: ['string', 'null'] }, { name: 'b', type: ['long', 'null'], default: 5 }]);
    const write = recordWriter(nullSecond)!;
    for (const value of [{ a: null, b: null }, { a: 'x', b: 7 }, { a: null }, { a: 'y', b: undefined }]) {
      const buf = Buffer.alloc(64);
      expect(buf.subarray(0, write(value, buf, 0)).equals(nullSecond.toBuffer(value)), JSON.stringify(value)).toBe(true);
    }
  });

  test('FramedEncoder: growing from a small buffer, and back to avsc for one event and on with the writer', () => {
    const encoder = new FramedEncoder(apiCallTypeV2, 9, 16);
    for (let i = 0; i < 300; i++) {
      const event = randomEvent(true);
      expect(encoder.encode(event).equals(Buffer.concat([Buffer.from([0, 0, 0, 0, 9]), apiCallTypeV2.toBuffer(event)]))).toBe(true);
    }
  });
});
