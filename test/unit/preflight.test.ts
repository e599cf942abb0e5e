/**
 * The preflight reaches Kafka with the same TLS and SASL settings as the consumer's own client. Offline: the two
 * client configs compared, and a plain TCP listener on loopback that records the first bytes the preflight sends.
 */
import { createServer, type AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { kafkaSecurity } from '../../cli/consume.ts';
import { preflight } from '../../cli/preflight.ts';
import { UnreachableError } from '../../runtime/errors.ts';
import { kafkaConfig, preflightKafkaConfig } from '../../runtime/kafka.ts';

describe('preflight: Kafka security settings', () => {
  const read = (file: string) => Buffer.from(`PEM of ${file}`);
  const flags = { kafkaCa: 'ca.pem', kafkaCert: 'cert.pem', kafkaKey: 'key.pem', kafkaSasl: 'scram-sha-256', kafkaSaslUsername: 'u' };
  const target = { brokers: ['kafka-0:9093'], ...kafkaSecurity(flags, { KAFKA_SASL_PASSWORD: 'p' }, read) };

  it("the preflight's client config has the consumer client's ssl and sasl, with shorter timeouts", () => {
    const consumer = kafkaConfig({ ...target, clientId: 'apilog-consume' });
    const check = preflightKafkaConfig(target, 10_000);
    expect(consumer.ssl).toEqual({ ca: [read('ca.pem')], cert: read('cert.pem'), key: read('key.pem') });
    expect(consumer.sasl).toEqual({ mechanism: 'scram-sha-256', username: 'u', password: 'p' });
    expect(check.ssl).toEqual(consumer.ssl);
    expect(check.sasl).toEqual(consumer.sasl);
    expect(check.brokers).toEqual(['kafka-0:9093']);
    expect(check.connectionTimeout).toBe(3000);
    expect(check.retry?.retries).toBe(1);
  });

  it('with ssl, the preflight opens a TLS handshake, and a peer that drops it is unreachable within the deadline', async () => {
    const firstBytes: number[] = [];
    const server = createServer((socket) =>
      socket.once('data', (data: Buffer) => {
        firstBytes.push(data[0]!);
        socket.destroy();
      }),
    );
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = `127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const started = Date.now();
      const failure = await preflight({ brokers: [address], ssl: true }, 4000).then(() => undefined, (error: unknown) => error);
      expect(failure).toBeInstanceOf(UnreachableError);
      expect((failure as Error).message).toContain(`cannot reach Kafka at ${address}`);
      expect(Date.now() - started).toBeLessThan(4500);
      // 0x16: a TLS handshake record. A plaintext Kafka request would start with its 4-byte length (0x00).
      expect(firstBytes.length).toBeGreaterThan(0);
      expect(firstBytes.every((b) => b === 0x16)).toBe(true);
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});
