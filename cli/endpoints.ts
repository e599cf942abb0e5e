/**
 * The options every subcommand takes: --brokers, --registry, --clickhouse, --topic, falling back to
 * KAFKA_BROKERS, SCHEMA_REGISTRY_URL, CLICKHOUSE_URL, APILOG_TOPIC, then to the local stack's defaults.
 * Validated here, once, with messages that name the option.
 */
import { readFileSync } from 'node:fs';
import { InvalidArgumentError, type Command } from 'commander';
import { z } from 'zod';
import { openSink } from '../clickhouse/openSink.ts';
import type { Sink } from '../clickhouse/sink.ts';
import { SchemaRegistryClient, type RegistryAuth } from '../schemas/registry.ts';
import {
  DEFAULT_TOPIC,
  LOCAL_CHDB_DIR,
  LOCAL_KAFKA_BROKERS,
  LOCAL_SCHEMA_REGISTRY_URL,
} from '../stack/endpoints.ts';
import { ConfigError } from '../runtime/errors.ts';

export interface EndpointFlags {
  brokers?: string;
  registry?: string;
  clickhouse?: string;
  topic?: string;
  registryCa?: string;
  clickhouseCa?: string;
}

export interface Endpoints {
  readonly brokers: readonly string[];
  readonly registry: string;
  /** http(s)://… for a server, otherwise a directory for the embedded engine. */
  readonly clickhouse: string;
  readonly topic: string;
  /** Which values came from nowhere but the defaults (the demo starts the local stack only for those). */
  readonly defaulted: { readonly brokers: boolean; readonly registry: boolean; readonly clickhouse: boolean };
}

const brokerSchema = z.string().regex(/^[A-Za-z0-9.\-_[\]:]+:\d{1,5}$/, 'expected host:port');
const urlSchema = z.string().regex(/^https?:\/\/[^\s]+$/i, 'expected an http:// or https:// URL');
const topicSchema = z.string().regex(/^[A-Za-z0-9._-]{1,249}$/, 'expected 1-249 characters of letters, digits, . _ -');

function pick(flag: string | undefined, envName: string, fallback: string): { value: string; defaulted: boolean } {
  if (flag !== undefined && flag !== '') return { value: flag, defaulted: false };
  const env = process.env[envName];
  if (env !== undefined && env !== '') return { value: env, defaulted: false };
  return { value: fallback, defaulted: true };
}

function check<T>(schema: z.ZodType<T>, value: unknown, option: string, envName: string): T {
  const result = schema.safeParse(value);
  if (!result.success) {
    throw new ConfigError(`${option} (or ${envName}) "${String(value)}": ${result.error.issues[0]?.message ?? 'invalid'}`);
  }
  return result.data;
}

export function resolveEndpoints(flags: EndpointFlags): Endpoints {
  const brokers = pick(flags.brokers, 'KAFKA_BROKERS', LOCAL_KAFKA_BROKERS);
  const registry = pick(flags.registry, 'SCHEMA_REGISTRY_URL', LOCAL_SCHEMA_REGISTRY_URL);
  const clickhouse = pick(flags.clickhouse, 'CLICKHOUSE_URL', LOCAL_CHDB_DIR);
  const topic = pick(flags.topic, 'APILOG_TOPIC', DEFAULT_TOPIC);
  const brokerList = brokers.value.split(',').map((b) => b.trim()).filter((b) => b.length > 0);
  if (brokerList.length === 0) throw new ConfigError('--brokers (or KAFKA_BROKERS) is empty');
  for (const b of brokerList) check(brokerSchema, b, '--brokers', 'KAFKA_BROKERS');
  const clickhouseValue = clickhouse.value.trim();
  if (/^[a-z]+:\/\//i.test(clickhouseValue)) check(urlSchema, clickhouseValue, '--clickhouse', 'CLICKHOUSE_URL');
  return {
    brokers: brokerList,
    registry: check(urlSchema, registry.value.trim(), '--registry', 'SCHEMA_REGISTRY_URL').replace(/\/+$/, ''),
    clickhouse: clickhouseValue,
    topic: check(topicSchema, topic.value.trim(), '--topic', 'APILOG_TOPIC'),
    defaulted: { brokers: brokers.defaulted, registry: registry.defaulted, clickhouse: clickhouse.defaulted },
  };
}

/** A flag's value through `schema` (a parser for commander, and so for the environment and the config file too). */
function argument<T>(schema: z.ZodType<T>): (value: string) => string {
  return (value) => {
    const result = schema.safeParse(value.trim());
    if (!result.success) throw new InvalidArgumentError(result.error.issues[0]?.message ?? 'invalid');
    return value;
  };
}

const brokersArgument = argument(z.string().refine((list) => list.split(',').every((b) => b.trim() === '' || brokerSchema.safeParse(b.trim()).success), 'expected host:port[,host:port…]'));
const clickhouseArgument = argument(z.string().refine((v) => !/^[a-z]+:\/\//i.test(v) || urlSchema.safeParse(v).success, 'expected an http:// or https:// URL, or a directory'));

/** Adds the four endpoint options to a subcommand. An empty value counts as unset (the default). */
export function withEndpoints(command: Command): Command {
  return command
    .option('--brokers <list>', `Kafka bootstrap brokers, comma-separated (default ${LOCAL_KAFKA_BROKERS})`, brokersArgument)
    .option('--registry <url>', `Confluent-compatible schema registry URL (default ${LOCAL_SCHEMA_REGISTRY_URL})`, argument(urlSchema.or(z.literal(''))))
    .option('--clickhouse <url|dir>', 'ClickHouse server http(s)://[user:password@]… or a directory for the embedded engine (default .stack/chdb)', clickhouseArgument)
    .option('--topic <name>', `Kafka topic of API-call events (default ${DEFAULT_TOPIC})`, argument(topicSchema.or(z.literal(''))))
    .option('--clickhouse-ca <file>', 'PEM CA certificate for an https:// ClickHouse (user and password from CLICKHOUSE_USER, CLICKHOUSE_PASSWORD)')
    .option('--registry-ca <file>', 'PEM CA certificate for an https:// registry; credentials from SCHEMA_REGISTRY_USERNAME and SCHEMA_REGISTRY_PASSWORD, or SCHEMA_REGISTRY_TOKEN');
}

/**
 * The registry client of a command. Credentials come from the environment only (a flag would show in `ps`):
 * SCHEMA_REGISTRY_USERNAME with SCHEMA_REGISTRY_PASSWORD (basic auth), or SCHEMA_REGISTRY_TOKEN (bearer), or a
 * user:password@ in SCHEMA_REGISTRY_URL. The CA of an https:// registry: --registry-ca or SCHEMA_REGISTRY_CA (a file).
 */
export function registryFor(
  endpoints: Pick<Endpoints, 'registry'>,
  flags: Pick<EndpointFlags, 'registryCa'>,
  env: NodeJS.ProcessEnv = process.env,
  read: (file: string) => Buffer = (f) => readFileSync(f),
): SchemaRegistryClient {
  const username = env['SCHEMA_REGISTRY_USERNAME'] || undefined;
  const password = env['SCHEMA_REGISTRY_PASSWORD'] || undefined;
  const token = env['SCHEMA_REGISTRY_TOKEN'] || undefined;
  if ((username === undefined) !== (password === undefined)) throw new ConfigError('SCHEMA_REGISTRY_USERNAME and SCHEMA_REGISTRY_PASSWORD go together');
  if (username !== undefined && token !== undefined) throw new ConfigError('set SCHEMA_REGISTRY_USERNAME/PASSWORD or SCHEMA_REGISTRY_TOKEN, not both');
  const auth: RegistryAuth | undefined = token !== undefined ? { token } : username !== undefined ? { username, password: password! } : undefined;
  const caFile = flags.registryCa ?? (env['SCHEMA_REGISTRY_CA'] || undefined);
  let ca: Buffer | undefined;
  if (caFile !== undefined) {
    try {
      ca = read(caFile);
    } catch (error) {
      throw new ConfigError(`--registry-ca (or SCHEMA_REGISTRY_CA) "${caFile}": ${(error as Error).message}`);
    }
  }
  return new SchemaRegistryClient({ url: endpoints.registry, ...(auth ? { auth } : {}), ...(ca ? { ca } : {}) });
}

/** The ClickHouse of a command: a server (https:// with --clickhouse-ca; CLICKHOUSE_USER, CLICKHOUSE_PASSWORD) or the embedded engine. */
export function sinkFor(endpoints: Pick<Endpoints, 'clickhouse'>, flags: Pick<EndpointFlags, 'clickhouseCa'>, options: { requestTimeoutMs?: number } = {}): Promise<Sink> {
  return openSink(endpoints.clickhouse, { ...options, ...(flags.clickhouseCa === undefined ? {} : { caCert: readFileSync(flags.clickhouseCa) }) });
}
