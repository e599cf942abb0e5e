/**
 * log() never throws and never accepts what cannot be encoded (offline: the logger is built without a broker,
 * nothing is sent). The validator is fuzzed against avsc: whatever it accepts, the Avro type accepts too.
 */
import { describe, expect, test } from 'vitest';
import { ApiLogger, resolveLoggerOptions, type LogEvent } from '../../producer/apiLogger.ts';
import { prng, SyntheticEvents } from '../../producer/syntheticEvents.ts';
import { EventValidator, isUuid } from '../../producer/validate.ts';
import { API_CALL_SCHEMA_V1, API_CALL_SCHEMA_V2, apiCallTypeV2 } from '../../schemas/apiCall.ts';

function offlineLogger(extra: Partial<Parameters<typeof resolveLoggerOptions>[0]> = {}) {
  const options = resolveLoggerOptions({
    brokers: ['127.0.0.1:1'], registry: 'http://127.0.0.1:1', topic: 'offline', lingerMs: 600_000, batchMaxEvents: 1_000_000,
    maxQueuedEvents: 1_000_000, closeTimeoutMs: 0, ...extra,
  });
  return new ApiLogger(options, 1, undefined);
}

const valid = () => new SyntheticEvents({ seed: 3 }).next();

describe('EventValidator', () => {
  const v = new EventValidator({ maxEventBytes: 4096 });

  test('accepts synthetic events and minimal events (SDK-filled and defaulted fields left out)', () => {
    for (const e of new SyntheticEvents({ seed: 9 }).take(500)) expect(v.validate(e)).toBeGreaterThan(0);
    const { event_id: _id, ts: _ts, client_id: _c, attributes: _a, ...minimal } = valid();
    expect(v.validate(minimal)).toBeGreaterThan(0);
  });

  test.each([
    ['missing_field', 'api', (e: Record<string, unknown>) => delete e['api']],
    ['wrong_type', 'status', (e: Record<string, unknown>) => (e['status'] = '200')],
    ['out_of_range', 'status', (e: Record<string, unknown>) => (e['status'] = 2 ** 31)],
    ['out_of_range', 'latency_us', (e: Record<string, unknown>) => (e['latency_us'] = 1.5)],
    ['out_of_range', 'request_bytes', (e: Record<string, unknown>) => (e['request_bytes'] = -1)],
    ['out_of_range', 'ts', (e: Record<string, unknown>) => (e['ts'] = Number.NaN)],
    ['bad_uuid', 'event_id', (e: Record<string, unknown>) => (e['event_id'] = 'not-a-uuid')],
    ['wrong_type', 'user_id', (e: Record<string, unknown>) => (e['user_id'] = 42)],
    ['wrong_type', 'attributes.n', (e: Record<string, unknown>) => (e['attributes'] = { n: 1 })],
    ['wrong_type', 'attributes', (e: Record<string, unknown>) => (e['attributes'] = ['a'])],
    ['oversized', '', (e: Record<string, unknown>) => (e['error_message'] = 'é'.repeat(3000))],
    // Fields of schema version 2 (the latest, which the validator checks by default).
    ['wrong_type', 'protocol', (e: Record<string, unknown>) => (e['protocol'] = null)],
    ['out_of_range', 'retry_attempt', (e: Record<string, unknown>) => (e['retry_attempt'] = -1)],
    ['out_of_range', 'upstream_latency_us', (e: Record<string, unknown>) => (e['upstream_latency_us'] = 1.5)],
    ['wrong_type', 'upstream_latency_us', (e: Record<string, unknown>) => (e['upstream_latency_us'] = '5')],
    ['wrong_type', 'user_agent', (e: Record<string, unknown>) => (e['user_agent'] = 5)],
  ])('refuses %s (%s)', (reason, field, mutate) => {
    const e = valid() as unknown as Record<string, unknown>;
    mutate(e);
    expect(v.validate(e)).toBeLessThan(0);
    expect(v.lastReason).toBe(reason);
    expect(v.lastField).toBe(field);
  });

  test('version 2 fields: accepted when valid or null; a validator of version 1 does not look at them', () => {
    const v2 = { ...valid(), protocol: 'h2', region: 'eu-west-1', retry_attempt: 2, upstream_latency_us: null, user_agent: 'curl/8' };
    expect(new EventValidator({}, API_CALL_SCHEMA_V2).validate(v2)).toBeGreaterThan(0);
    expect(new EventValidator({}, API_CALL_SCHEMA_V2).validate({ ...v2, upstream_latency_us: 1200 })).toBeGreaterThan(0);
    const pinned = new EventValidator({}, API_CALL_SCHEMA_V1);
    expect(pinned.validate({ ...v2, retry_attempt: -1 })).toBeGreaterThan(0);
  });

  test('counts UTF-8 bytes, not characters, near the limit', () => {
    const e = valid();
    e.error_message = 'a'.repeat(3000); // 3000 bytes: under 4096 with the rest
    expect(v.validate(e)).toBeGreaterThan(0);
    e.error_message = '€'.repeat(1400); // 4200 bytes
    expect(v.validate(e)).toBeLessThan(0);
  });

  test('isUuid', () => {
    expect(isUuid('123e4567-e89b-12d3-a456-426614174000')).toBe(true);
    expect(isUuid('123E4567-E89B-12D3-A456-426614174000')).toBe(true);
    expect(isUuid('123e4567e89b12d3a456426614174000')).toBe(false);
    expect(isUuid('123e4567-e89b-12d3-a456-42661417400g')).toBe(false);
  });
});

/** Malformed values of every kind, including hostile objects. */
function junk(rand: () => number): unknown {
  const pick = Math.floor(rand() * 16);
  switch (pick) {
    case 0: return undefined;
    case 1: return null;
    case 2: return rand() * 1e6;
    case 3: return 'x'.repeat(Math.floor(rand() * 10));
    case 4: return [valid()];
    case 5: return Symbol('s');
    case 6: return 10n;
    case 7: return () => 1;
    case 8: return new Proxy({}, { get() { throw new Error('proxy get'); }, ownKeys() { throw new Error('proxy keys'); } });
    case 9: {
      const { proxy, revoke } = Proxy.revocable(valid(), {});
      revoke();
      return proxy;
    }
    case 10: return Object.defineProperty(valid(), 'api', { get() { throw new Error('getter'); } });
    case 11: return Object.freeze(Object.assign(valid(), { event_id: undefined }));
    case 12: return Object.create(null);
    case 13: return [Number.NaN, Infinity, -1, 2 ** 53, 1.5, -0][Math.floor(rand() * 6)];
    case 14: return { toString() { throw new Error('toString'); } };
    default: return '\ud800'.repeat(Math.floor(rand() * 30_000));
  }
}

/** Every field of the latest schema (what the logger checks and encodes by default). */
const FIELDS = (JSON.parse(API_CALL_SCHEMA_V2) as { fields: { name: string }[] }).fields.map((f) => f.name);

describe('log() fuzzed', () => {
  test('never throws, returns a boolean, counts every refusal, accepts only what Avro can encode', async () => {
    const rejected: string[] = [];
    const logger = offlineLogger({ onReject: (reason) => void rejected.push(reason), maxEventBytes: 65_536 });
    const validator = new EventValidator({ maxEventBytes: 65_536 });
    const rand = prng(12345);
    let accepted = 0;
    const N = 10_000;
    for (let i = 0; i < N; i++) {
      let input: unknown;
      if (rand() < 0.2) input = junk(rand);
      else {
        const e = valid() as unknown as Record<string, unknown>;
        const mutations = 1 + Math.floor(rand() * 3);
        for (let m = 0; m < mutations; m++) {
          const field = FIELDS[Math.floor(rand() * FIELDS.length)]!;
          if (rand() < 0.3) delete e[field];
          else e[field] = junk(rand);
        }
        if (rand() < 0.1) e['__proto__'] = { api: 'polluted' };
        input = e;
      }
      let result: unknown;
      expect(() => (result = logger.log(input as LogEvent))).not.toThrow();
      expect(typeof result).toBe('boolean');
      if (result === true) {
        accepted++;
        // What log() accepted must be encodable: the same check the sender's encoder relies on.
        const e = input as Record<string, unknown>;
        // Read field by field, as the encoder does (getters and inherited properties count).
        const complete = Object.fromEntries(FIELDS.map((f) => [f, e[f]]));
        complete['event_id'] ??= '00000000-0000-4000-8000-000000000000';
        complete['ts'] ??= 0;
        expect(apiCallTypeV2.isValid(complete)).toBe(true);
        expect(validator.validate(input)).toBeGreaterThanOrEqual(0);
      }
    }
    const m = logger.metrics();
    expect(m.queued).toBe(accepted);
    expect(m.rejected).toBe(N - accepted);
    expect(rejected.length).toBe(N - accepted);
    expect(accepted).toBeGreaterThan(100); // some mutations keep events valid (e.g. deleting an optional field)
    expect(m.rejectedBy.unreadable).toBeGreaterThan(0);
    await logger.close();
  }, 30_000); // 10,000 events through log() and the validator: ~3 s alone, over vitest's 5 s when the 2 cores are busy

  test('a throwing onReject callback does not reach the caller', () => {
    const logger = offlineLogger({ onReject: () => { throw new Error('callback'); } });
    expect(logger.log({} as LogEvent)).toBe(false);
    expect(logger.metrics().rejectedBy.missing_field).toBe(1);
  });

  test('after close(), log() refuses with reason closed', async () => {
    const logger = offlineLogger();
    await logger.close();
    expect(logger.log(valid())).toBe(false);
    expect(logger.metrics().rejectedBy.closed).toBe(1);
  });

  test('queue full: policy drop refuses and counts; policy wait returns a promise that times out as dropped', async () => {
    const drop = offlineLogger({ maxQueuedEvents: 3 });
    const results = Array.from({ length: 5 }, () => drop.log(valid()));
    expect(results).toEqual([true, true, true, false, false]);
    expect(drop.metrics().droppedBy.queue_full).toBe(2);
    await drop.close();
    expect(drop.metrics().droppedBy.close_timeout).toBe(3);

    // A dead broker: the first batch is taken from the queue and stuck in flight; the queue behind it fills.
    const wait = offlineLogger({ maxQueuedEvents: 2, batchMaxEvents: 2, lingerMs: 1, whenFull: 'wait', maxWaitMs: 50 });
    expect([wait.log(valid()), wait.log(valid())]).toEqual([true, true]);
    await new Promise((r) => setTimeout(r, 100));
    expect(wait.metrics().queueDepth).toBe(0);
    expect([wait.log(valid()), wait.log(valid())]).toEqual([true, true]);
    const waiting = wait.log(valid());
    expect(waiting).toBeInstanceOf(Promise);
    expect(await waiting).toBe(false);
    const m = await wait.close();
    expect(m.droppedBy.wait_timeout).toBe(1);
    // Closed with the broker still away: the batch in flight and the queue behind it are counted, nothing is lost silently.
    expect(m.queued).toBe(4);
    expect(m.droppedBy.close_timeout).toBe(4);
  });
});

describe('options', () => {
  test('unknown and conflicting options fail at start-up, naming the option', () => {
    expect(() => resolveLoggerOptions({ brokers: ['a:1'], registry: 'http://r', topic: 't', lingerMS: 5 } as never)).toThrow(/unknown option lingerMS/);
    expect(() => resolveLoggerOptions({ registry: 'http://r', topic: 't' })).toThrow(/brokers/);
    expect(() => resolveLoggerOptions({ brokers: ['a:1'], registry: 'http://r', topic: 'bad topic' })).toThrow(/topic/);
    expect(() => resolveLoggerOptions({ brokers: ['a:1'], registry: 'http://r', topic: 't', compression: 'zip' as never })).toThrow(/compression/);
    expect(() => resolveLoggerOptions({ brokers: ['a:1'], registry: 'http://r', topic: 't', hotKeys: { a: 0 } })).toThrow(/hotKeys\["a"\]/);
    expect(() => resolveLoggerOptions({ brokers: ['a:1'], registry: 'http://r', topic: 't', schemaVersion: 3 as never })).toThrow(/schemaVersion must be 1 or 2/);
    expect(resolveLoggerOptions({ brokers: ['a:1'], registry: 'http://r', topic: 't' }).schemaVersion).toBe(2);
  });
});
