/**
 * What crosses back from the SDK's send worker when a send fails: the logger's retry loop reads kafkajs's error
 * `type` along the cause chain (a permanent refusal drops the batch, anything else is retried), so the error it
 * gets on the calling thread must keep those fields through the structured clone.
 */
import kafkajs from 'kafkajs';
import { describe, expect, test } from 'vitest';
import { permanentBrokerError } from '../../producer/partitionedSend.ts';
import { deserializeError, serializeError } from '../../producer/workerProducer.ts';

// kafkajs's typings omit what its constructors take (the broker's error entry, the cause): built as kafkajs builds them.
type Ctor = new (e: unknown, options?: { cause?: unknown; retriable?: boolean }) => Error;
const KafkaJSNonRetriableError = kafkajs.KafkaJSNonRetriableError as unknown as Ctor;
const KafkaJSProtocolError = kafkajs.KafkaJSProtocolError as unknown as Ctor;

describe('send worker errors', () => {
  test("a broker's permanent refusal, wrapped by kafkajs, is still found permanent on the calling thread", () => {
    const refused = new KafkaJSProtocolError({ message: 'The request included a message larger than the max message size the server will accept', type: 'MESSAGE_TOO_LARGE', code: 10, retriable: false });
    const wrapped = new KafkaJSNonRetriableError(refused, { cause: refused }); // as kafkajs's retrier wraps it
    expect(permanentBrokerError(wrapped)).toBe('MESSAGE_TOO_LARGE');
    const back = deserializeError(structuredClone(serializeError(wrapped)));
    expect(back).toBeInstanceOf(Error);
    expect(back.name).toBe('KafkaJSNonRetriableError');
    expect(back.message).toBe(wrapped.message);
    expect(permanentBrokerError(back)).toBe('MESSAGE_TOO_LARGE');
    expect((back.cause as { code?: unknown }).code).toBe(10);
  });

  test('a retriable failure stays retriable and not permanent', () => {
    const timeout = new KafkaJSProtocolError({ message: 'not leader', type: 'NOT_LEADER_FOR_PARTITION', code: 6, retriable: true });
    const back = deserializeError(serializeError(timeout));
    expect(permanentBrokerError(back)).toBeUndefined();
    expect((back as { retriable?: unknown }).retriable).toBe(true);
    expect(serializeError('plain text')).toEqual({ name: 'Error', message: 'plain text' });
  });
});
