/**
 * The secured variant of the local stack (`npm run stack -- up --secure`), as production runs the pipeline:
 *
 * - Kafka with one SASL_SSL listener (SCRAM-SHA-512 users, written with the storage; TLS certificate from our CA),
 * - the schema registry behind TLS and authentication (Debian's nginx: basic auth on one port, a bearer token on
 *   another; Apicurio's own authentication needs an OIDC server that cannot run here),
 * - ClickHouse over HTTPS only, with one user that has a password.
 *
 * Certificates come from a CA made with openssl (certificates.ts); the brokers's stores are made from them with
 * openssl and keytool. Credentials are random, made once and kept in `.stack/secure/credentials.json` (mode 0600);
 * `.stack/secure/env` (0600) holds what a shell needs: `set -a; . .stack/secure/env; set +a`.
 * Ports: Kafka 49092 (controller 49093), registry 48081 behind nginx 48443 (basic) and 48444 (bearer), ClickHouse
 * HTTPS 48124. Every service is a private instance with its own id, data and pid file.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { certificatesIn, makeCertificates, type Certificates } from './certificates.ts';
import { STACK_DIR } from './endpoints.ts';
import { registryProxyService, type RegistryProxy } from './registryProxy.ts';
import { clickhouseService, kafkaService, registryService, type SaslUser, type Service } from './services.ts';

export const SECURE_DIR = join(STACK_DIR, 'secure');
export const SECURE_PORTS = { kafka: 49092, kafkaController: 49093, registry: 48081, registryBasic: 48443, registryBearer: 48444, clickhouse: 48124 } as const;

export interface SecureCredentials {
  /** The clients' Kafka user (SCRAM-SHA-512). */
  readonly kafka: SaslUser;
  /** The broker's own user. */
  readonly kafkaBroker: SaslUser;
  readonly storePassword: string;
  readonly registry: SaslUser;
  readonly registryToken: string;
  readonly clickhouse: SaslUser;
}

export interface SecureStack {
  readonly certificates: Certificates;
  readonly credentials: SecureCredentials;
  readonly kafka: Service;
  /** The registry behind the proxy; absent when the proxy fronts a registry that runs already (`registryUpstream`). */
  readonly registry: Service | undefined;
  readonly proxy: RegistryProxy;
  readonly clickhouse: Service;
  /** In start order. */
  readonly services: readonly Service[];
  /** What clients connect to. */
  readonly endpoints: { readonly brokers: string; readonly registryBasic: string; readonly registryBearer: string; readonly clickhouse: string };
}

const secret = () => randomBytes(18).toString('base64url');

/** The stack's credentials: made on first use, then the same ones (the broker's storage holds its SCRAM users). */
function credentials(): SecureCredentials {
  const file = join(SECURE_DIR, 'credentials.json');
  if (existsSync(file)) return JSON.parse(readFileSync(file, 'utf8')) as SecureCredentials;
  const made: SecureCredentials = {
    kafka: { username: 'apilog', password: secret() },
    kafkaBroker: { username: 'broker', password: secret() },
    storePassword: secret(),
    registry: { username: 'apilog', password: secret() },
    registryToken: secret(),
    clickhouse: { username: 'apilog', password: secret() },
  };
  mkdirSync(SECURE_DIR, { recursive: true });
  writeFileSync(file, `${JSON.stringify(made, null, 2)}\n`, { mode: 0o600 });
  return made;
}

/**
 * The secured services. `registryUpstream` (host:port): put the proxy in front of a registry that already runs (the
 * tests front the shared one, to spare the two cores a third JVM) instead of starting a private one on 48081.
 */
export function secureStack(options: { registryUpstream?: string } = {}): SecureStack {
  const c = credentials();
  const certificates = certificatesIn(join(SECURE_DIR, 'tls'));
  const kafka = kafkaService({
    id: 'kafka-secure', port: SECURE_PORTS.kafka, controllerPort: SECURE_PORTS.kafkaController,
    security: { certificates, storePassword: c.storePassword, broker: c.kafkaBroker, users: [c.kafka] },
  });
  const registry = options.registryUpstream === undefined ? registryService({ id: 'registry-secure', port: SECURE_PORTS.registry }) : undefined;
  const proxy = registryProxyService({
    id: 'registry-proxy-secure', basicPort: SECURE_PORTS.registryBasic, bearerPort: SECURE_PORTS.registryBearer,
    upstream: options.registryUpstream ?? `127.0.0.1:${SECURE_PORTS.registry}`, certificatesDir: join(SECURE_DIR, 'tls'),
    username: c.registry.username, password: c.registry.password, token: c.registryToken,
  });
  const clickhouse = clickhouseService({ id: 'clickhouse-secure', httpPort: SECURE_PORTS.clickhouse, security: { certificates, user: c.clickhouse } });
  return {
    certificates,
    credentials: c,
    kafka,
    registry,
    proxy,
    clickhouse,
    services: [kafka, ...(registry ? [registry] : []), proxy, clickhouse],
    endpoints: { brokers: kafka.endpoint, registryBasic: proxy.basicUrl, registryBearer: proxy.bearerUrl, clickhouse: clickhouse.endpoint },
  };
}

/** Makes the CA and the servers' certificate (idempotent), then writes `.stack/secure/env`. */
export function prepareSecureStack(stack: SecureStack): void {
  makeCertificates(join(SECURE_DIR, 'tls'));
  const c = stack.credentials;
  writeFileSync(
    join(SECURE_DIR, 'env'),
    [
      '# Written by `npm run stack -- up --secure`: load with `set -a; . .stack/secure/env; set +a`, then e.g.',
      '# apilog consume --kafka-sasl scram-sha-512 --kafka-ca "$APILOG_CA" --clickhouse-ca "$APILOG_CA" --create-table',
      `APILOG_CA=${stack.certificates.caCert}`,
      `KAFKA_BROKERS=${stack.endpoints.brokers}`,
      'KAFKA_SASL_MECHANISM=scram-sha-512',
      `KAFKA_SASL_USERNAME=${c.kafka.username}`,
      `KAFKA_SASL_PASSWORD=${c.kafka.password}`,
      `SCHEMA_REGISTRY_URL=${stack.endpoints.registryBasic}`,
      `SCHEMA_REGISTRY_CA=${stack.certificates.caCert}`,
      `SCHEMA_REGISTRY_USERNAME=${c.registry.username}`,
      `SCHEMA_REGISTRY_PASSWORD=${c.registry.password}`,
      `CLICKHOUSE_URL=${stack.endpoints.clickhouse}`,
      `CLICKHOUSE_USER=${c.clickhouse.username}`,
      `CLICKHOUSE_PASSWORD=${c.clickhouse.password}`,
      '',
    ].join('\n'),
    { mode: 0o600 },
  );
}
