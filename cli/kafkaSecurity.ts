/**
 * Kafka TLS and SASL options, shared by every command that talks to Kafka (consume, produce, ingest).
 * Secrets come from the environment only (a flag would show in `ps`): KAFKA_SASL_PASSWORD.
 */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import type { KafkaConfig, SASLOptions } from 'kafkajs';
import { ConfigError } from '../runtime/errors.ts';

export interface SecurityFlags {
  kafkaTls?: boolean;
  kafkaCa?: string;
  kafkaCert?: string;
  kafkaKey?: string;
  kafkaSasl?: string;
  kafkaSaslUsername?: string;
}

const MECHANISMS = ['plain', 'scram-sha-256', 'scram-sha-512'] as const;

/**
 * Kafka TLS and SASL from flags and the environment. The SASL password is read from KAFKA_SASL_PASSWORD only
 * (a flag would show in `ps`); the username from --kafka-sasl-username or KAFKA_SASL_USERNAME.
 */
export function kafkaSecurity(flags: SecurityFlags, env: NodeJS.ProcessEnv = process.env, read: (file: string) => Buffer = (f) => readFileSync(f)): Pick<KafkaConfig, 'ssl' | 'sasl'> {
  const out: Pick<KafkaConfig, 'ssl' | 'sasl'> = {};
  const files = flags.kafkaCa !== undefined || flags.kafkaCert !== undefined || flags.kafkaKey !== undefined;
  if ((flags.kafkaCert === undefined) !== (flags.kafkaKey === undefined)) throw new ConfigError('--kafka-cert and --kafka-key go together (client certificate and its key)');
  if (flags.kafkaTls || files) {
    out.ssl = files
      ? {
          ...(flags.kafkaCa !== undefined ? { ca: [read(flags.kafkaCa)] } : {}),
          ...(flags.kafkaCert !== undefined ? { cert: read(flags.kafkaCert) } : {}),
          ...(flags.kafkaKey !== undefined ? { key: read(flags.kafkaKey) } : {}),
        }
      : true;
  }
  const mechanism = flags.kafkaSasl ?? env['KAFKA_SASL_MECHANISM'];
  if (mechanism !== undefined && mechanism !== '') {
    const m = mechanism.toLowerCase();
    if (!(MECHANISMS as readonly string[]).includes(m)) throw new ConfigError(`--kafka-sasl "${mechanism}": expected one of ${MECHANISMS.join(', ')}`);
    const username = flags.kafkaSaslUsername ?? env['KAFKA_SASL_USERNAME'];
    const password = env['KAFKA_SASL_PASSWORD'];
    if (!username) throw new ConfigError('--kafka-sasl needs a username: --kafka-sasl-username or KAFKA_SASL_USERNAME');
    if (!password) throw new ConfigError('--kafka-sasl needs KAFKA_SASL_PASSWORD in the environment');
    out.sasl = { mechanism: m, username, password } as SASLOptions;
  }
  return out;
}



/** Adds the Kafka TLS and SASL options to a subcommand. */
export function withKafkaSecurity(command: Command): Command {
  return command
    .option('--kafka-tls', 'connect to Kafka over TLS (system CAs unless --kafka-ca)')
    .option('--kafka-ca <file>', 'PEM CA certificate for Kafka TLS')
    .option('--kafka-cert <file>', 'PEM client certificate for Kafka mutual TLS')
    .option('--kafka-key <file>', 'PEM client key for Kafka mutual TLS')
    .option('--kafka-sasl <mechanism>', 'Kafka SASL: plain, scram-sha-256 or scram-sha-512 (password from KAFKA_SASL_PASSWORD)')
    .option('--kafka-sasl-username <name>', 'Kafka SASL username');
}
