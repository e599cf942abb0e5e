/**
 * The API-call event: the contract between producers and the consumer.
 * The Avro schema in avro/api_call.v1.avsc is the source of truth; this type mirrors it.
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

/** The registry subject for a topic's values (TopicNameStrategy). */
export const valueSubject = (topic: string) => `${topic}-value`;
