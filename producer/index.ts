/**
 * The SDK's public entry: what `import … from 'apilog'` gives a service (producer/package.json's exports map).
 * Everything else in producer/, schemas/ and runtime/ is internal to the package. The middleware have their own
 * entries, `apilog/express` and `apilog/fastify`.
 */
export { ApiLogger, createApiLogger, type ApiLoggerOptions, type LogEvent, type WhenFull } from './apiLogger.ts';
export type { DropReason, MetricsSnapshot } from './metrics.ts';
export type { RejectReason } from './validate.ts';
export { API_CALL_SCHEMAS, LATEST_SCHEMA_VERSION, type ApiCallEvent, type ApiCallEventV2, type EventSchemaVersion } from '../schemas/apiCall.ts';
export { SchemaRefusedError, SchemaRegistryClient, type RegistryAuth, type RegistryOptions } from '../schemas/registry.ts';
export { createKafka, type KafkaOptions } from '../runtime/kafka.ts';
export { COMPRESSIONS, type CompressionName } from '../runtime/kafkaCodecs.ts';
export { ApilogError, ConfigError, UnreachableError } from '../runtime/errors.ts';
