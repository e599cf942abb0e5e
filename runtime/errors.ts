/**
 * One error base for the pipeline. `retriable` says whether doing the same thing again may succeed
 * (a service down, a timeout) or never will (bad input, a programming error). Retry loops read the flag;
 * callers branch with `instanceof`, never on names.
 */
export class ApilogError extends Error {
  readonly retriable: boolean;
  constructor(message: string, options: { retriable?: boolean; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.retriable = options.retriable ?? false;
  }
}

export type Component = 'Kafka' | 'schema registry' | 'ClickHouse';

/** A component did not answer at its address. Retriable: it may come back. */
export class UnreachableError extends ApilogError {
  readonly component: Component;
  readonly address: string;
  constructor(component: Component, address: string, reason: string, cause?: unknown) {
    super(`cannot reach ${component} at ${address}: ${reason}`, { retriable: true, cause });
    this.component = component;
    this.address = address;
  }
}

/** An option or environment variable has a value that cannot work. Not retriable. */
export class ConfigError extends ApilogError {}

/** A message on the topic cannot be decoded into an event (dead-letter material). Not retriable. */
export class DecodeError extends ApilogError {
  readonly reason: 'bad-magic-byte' | 'too-short' | 'unknown-schema-id' | 'corrupt-avro' | 'does-not-fit-table';
  constructor(reason: DecodeError['reason'], message: string, cause?: unknown) {
    super(message, { retriable: false, cause });
    this.reason = reason;
  }
}

/** A one-line description of any thrown value. */
export function describeError(error: unknown): string {
  if (error instanceof Error) return error.message.split('\n')[0] ?? error.name;
  return String(error);
}
