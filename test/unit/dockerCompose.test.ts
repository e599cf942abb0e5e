/**
 * docker-compose.yml cannot run here (no Docker engine), so it is checked as data: the same roles,
 * versions and endpoints as the native stack in stack/, each service with a healthcheck, and the
 * consumer wired to the others by name and waiting for them to be healthy.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { CLICKHOUSE_HTTP_PORT, DEFAULT_TOPIC, KAFKA_PORT, PROJECT_ROOT, REGISTRY_PORT } from '../../stack/endpoints.ts';
import { APICURIO_VERSION, KAFKA_VERSION } from '../../stack/services.ts';

interface ComposeService {
  image?: string;
  ports?: string[];
  environment?: Record<string, string>;
  healthcheck?: { test: string[] | string; interval?: string; retries?: number };
  depends_on?: Record<string, { condition: string }>;
  command?: string[] | string;
}

const compose = parse(readFileSync(`${PROJECT_ROOT}/docker-compose.yml`, 'utf8')) as { services: Record<string, ComposeService> };
const services = compose.services;

describe('docker-compose.yml', () => {
  it('has the four roles', () => {
    expect(Object.keys(services).sort()).toEqual(['apilog-consumer', 'clickhouse', 'kafka', 'schema-registry']);
  });

  it('pins the same Kafka and registry versions as stack/', () => {
    expect(services['kafka']!.image).toBe(`apache/kafka:${KAFKA_VERSION}`);
    expect(services['schema-registry']!.image).toBe(`apicurio/apicurio-registry:${APICURIO_VERSION}`);
    expect(services['clickhouse']!.image).toMatch(/^clickhouse\/clickhouse-server:\d+\.\d+/);
  });

  it('publishes the local stack endpoints on the host', () => {
    const hostPort = (name: string) => (services[name]!.ports ?? []).map((p) => Number(p.split(':')[0]));
    expect(hostPort('kafka')).toContain(KAFKA_PORT);
    expect(hostPort('schema-registry')).toContain(REGISTRY_PORT);
    expect(hostPort('clickhouse')).toContain(CLICKHOUSE_HTTP_PORT);
    expect(services['kafka']!.environment!['KAFKA_ADVERTISED_LISTENERS']).toContain(`127.0.0.1:${KAFKA_PORT}`);
  });

  it('gives every infrastructure service a healthcheck that probes its own port', () => {
    const probes: Record<string, string> = { kafka: '9092', 'schema-registry': '/apis/ccompat/v7', clickhouse: '8123/ping' };
    for (const [name, needle] of Object.entries(probes)) {
      const hc = services[name]!.healthcheck;
      expect(hc, `${name} healthcheck`).toBeDefined();
      const test = Array.isArray(hc!.test) ? hc!.test.join(' ') : hc!.test;
      expect(test).toContain(needle);
      expect(hc!.retries).toBeGreaterThan(0);
    }
  });

  it('keeps Kafka topics explicit, as the stack does', () => {
    expect(services['kafka']!.environment!['KAFKA_AUTO_CREATE_TOPICS_ENABLE']).toBe('false');
  });

  it('wires the consumer to the other services by name and waits for them to be healthy', () => {
    const consumer = services['apilog-consumer']!;
    const env = consumer.environment!;
    const internalKafka = /INTERNAL:\/\/kafka:(\d+)/.exec(services['kafka']!.environment!['KAFKA_ADVERTISED_LISTENERS']!)![1];
    expect(env['KAFKA_BROKERS']).toBe(`kafka:${internalKafka}`);
    expect(env['SCHEMA_REGISTRY_URL']).toMatch(/^http:\/\/schema-registry:8080\/apis\/ccompat\/v7$/);
    expect(env['CLICKHOUSE_URL']).toBe('http://clickhouse:8123');
    expect(env['APILOG_TOPIC']).toBe(DEFAULT_TOPIC);
    for (const dep of ['kafka', 'schema-registry', 'clickhouse']) {
      expect(consumer.depends_on?.[dep]?.condition).toBe('service_healthy');
    }
    const command = Array.isArray(consumer.command) ? consumer.command.join(' ') : consumer.command ?? '';
    expect(command).toContain('bin/apilog.js consume');
  });
});
