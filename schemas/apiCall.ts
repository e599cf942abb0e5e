/**
 * The API-call event: the contract between producers and the consumer.
 * The Avro schemas in avro/api_call.v<N>.avsc are the source of truth; these types mirror them.
 */
import { readFileSync } from 'node:fs';
import avro from 'avsc';

export interface ApiCallEvent {
  event_id: string;
  /** Milliseconds since the Unix epoch. */
  ts: number;
  api: string;
  method: string;
  route: string;
  path: string;
  status: number;
  latency_us: number;
  request_bytes: number;
  response_bytes: number;
  service: string;
  instance: string;
  environment: string;
  client_id: string | null;
  client_ip: string | null;
  user_id: string | null;
  tenant_id: string | null;
  trace_id: string | null;
  span_id: string | null;
  error_class: string | null;
  error_message: string | null;
  attributes: Record<string, string>;
}

/** The schema's text as registered with the registry. */
export const API_CALL_SCHEMA_V1: string = readFileSync(new URL('./avro/api_call.v1.avsc', import.meta.url), 'utf8');

/** avsc type of version 1. Logical types are left as their underlying types (ts stays a number). */
export const apiCallTypeV1 = avro.Type.forSchema(JSON.parse(API_CALL_SCHEMA_V1) as avro.Schema);

/** Version 2 adds fields, each with a default (BACKWARD compatible with version 1). */
export interface ApiCallEventV2 extends ApiCallEvent {
  /** 'http', 'h2', 'grpc', … Default 'http'. */
  protocol: string;
  /** Default ''. */
  region: string;
  /** 0 for a first attempt. Default 0. */
  retry_attempt: number;
  upstream_latency_us: number | null;
  user_agent: string | null;
}

export const API_CALL_SCHEMA_V2: string = readFileSync(new URL('./avro/api_call.v2.avsc', import.meta.url), 'utf8');

export const apiCallTypeV2 = avro.Type.forSchema(JSON.parse(API_CALL_SCHEMA_V2) as avro.Schema);

/** The versions of the contract a producer can write. */
export type EventSchemaVersion = 1 | 2;

/** Every version of the contract, oldest first; the last is the one producers should write. */
export const API_CALL_SCHEMAS: readonly { readonly version: EventSchemaVersion; readonly text: string; readonly type: avro.Type }[] = [
  { version: 1, text: API_CALL_SCHEMA_V1, type: apiCallTypeV1 },
  { version: 2, text: API_CALL_SCHEMA_V2, type: apiCallTypeV2 },
];

/** The version producers write unless pinned to an older one (the SDK's `schemaVersion`). */
export const LATEST_SCHEMA_VERSION: EventSchemaVersion = API_CALL_SCHEMAS[API_CALL_SCHEMAS.length - 1]!.version;

/** One version of the contract: its text as registered and its avsc type. */
export function apiCallSchema(version: EventSchemaVersion): { readonly text: string; readonly type: avro.Type } {
  const found = API_CALL_SCHEMAS.find((s) => s.version === version);
  if (found === undefined) throw new RangeError(`no API-call schema version ${String(version)}`);
  return found;
}

/** The registry subject for a topic's values (TopicNameStrategy). */
export const valueSubject = (topic: string) => `${topic}-value`;
