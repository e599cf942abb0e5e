/**
 * Which errors that end kafkajs's consumer for good the consumer outlives (unit): those a broker coming back cures,
 * found along the causes kafkajs wraps them in, and never an error of ours, which says itself whether to retry.
 */
import { describe, expect, it } from 'vitest';
import { KafkaJSConnectionError, KafkaJSGroupCoordinatorNotFound, KafkaJSNonRetriableError, KafkaJSNotImplemented, KafkaJSProtocolError } from 'kafkajs';
import { isKafkaOutage } from '../../consumer/apiCallConsumer.ts';
import { ApilogError, ConfigError } from '../../runtime/errors.ts';

describe('isKafkaOutage', () => {
  it('finds a missing coordinator behind the non-retriable error kafkajs wraps it in', () => {
    // kafkajs's own types leave out the message its constructors take.
    const coordinator = new (KafkaJSGroupCoordinatorNotFound as unknown as new (m: string) => Error)('Failed to find group coordinator');
    expect(isKafkaOutage(coordinator)).toBe(true);
    // As kafkajs's retrier rejects with it (src/retry/index.js): the original as message and cause.
    const Wrapper = KafkaJSNonRetriableError as unknown as new (e: Error, options: { cause: Error }) => Error;
    expect(isKafkaOutage(new Wrapper(coordinator, { cause: coordinator }))).toBe(true);
    expect(isKafkaOutage(new KafkaJSConnectionError('Connection error: connect ECONNREFUSED'))).toBe(true);
  });

  it('leaves alone what a broker coming back does not cure, and our own errors', () => {
    expect(isKafkaOutage(new (KafkaJSNotImplemented as unknown as new (m: string) => Error)('Snappy compression not implemented'))).toBe(false);
    expect(isKafkaOutage(new KafkaJSProtocolError('Not authorized to access topics: [Topic authorization failed]'))).toBe(false);
    expect(isKafkaOutage(new ConfigError('table t has no _offset column'))).toBe(false);
    // Ours, even when a Kafka outage caused it: its retriable flag decides.
    expect(isKafkaOutage(new ApilogError('ClickHouse rejected the rows', { cause: new KafkaJSConnectionError('x') }))).toBe(false);
    expect(isKafkaOutage(new Error('a bug'))).toBe(false);
    expect(isKafkaOutage('a string')).toBe(false);
  });
});
