/**
 * Configuration as operators give it to daemons. Every flag a command shows in `--help` can also come from an
 * environment variable and from a config file; a value is taken from the first of: the flag, the environment,
 * the file, the default.
 *
 * - Environment: the established names for the endpoints and Kafka SASL (ENVIRONMENT_NAMES below), and
 *   `APILOG_<FLAG>` for every other flag (`--batch-rows`: APILOG_BATCH_ROWS; `--kafka-tls`: APILOG_KAFKA_TLS=true).
 *   An empty variable counts as unset.
 * - File: `--config <file>` or APILOG_CONFIG; YAML, or JSON (which YAML reads). Keys are the flags' long names.
 *   A top-level key applies to every command that has that flag; a section named after a command (`consume:`;
 *   `schemas: { check: … }`) to that command only, and wins over the top level. In string values `${NAME}` is
 *   the environment variable NAME (secrets stay out of the file: `clickhouse: https://apilog:${CH_PASSWORD}@ch:8443`),
 *   `${NAME:-text}` falls back to text, `$${` is a literal `${`; an unset NAME without a fallback is an error.
 *   Unknown keys and sections are errors; an empty value (`key:`) counts as unset.
 *
 * Values from either place go through the flag's own parser (the same checks and messages as on the command line).
 * A mistake is a ConfigError that names the variable, or the file, line and key (configFile.ts reads the file).
 */
import { Help, type Command, type Option } from 'commander';
import { ConfigError, describeError } from '../runtime/errors.ts';

/** The variable of `--config`. */
export const CONFIG_ENVIRONMENT_NAME = 'APILOG_CONFIG';

/** Flags whose variables predate the APILOG_ rule, named as the components' own tools name them. */
export const ENVIRONMENT_NAMES: Readonly<Record<string, string>> = {
  brokers: 'KAFKA_BROKERS',
  registry: 'SCHEMA_REGISTRY_URL',
  clickhouse: 'CLICKHOUSE_URL',
  'registry-ca': 'SCHEMA_REGISTRY_CA',
  'kafka-sasl': 'KAFKA_SASL_MECHANISM',
  'kafka-sasl-username': 'KAFKA_SASL_USERNAME',
};

/** A flag's long name without its dashes: its key in the config file. */
export const keyOf = (option: Option): string => option.long!.replace(/^--/, '');

/** The environment variable of a flag. */
export function environmentNameOf(option: Option): string {
  const key = keyOf(option);
  return ENVIRONMENT_NAMES[key] ?? `APILOG_${key.replace(/-/g, '_').toUpperCase()}`;
}

/** The options of a command that configuration can set: those its --help shows, except --config itself. */
export function configurableOptions(command: Command): Option[] {
  return command.options.filter((o) => !o.hidden && o.long !== undefined && o.long !== '--config' && o.long !== '--version' && o.long !== '--help');
}

/** Takes a value: not a boolean flag. */
export const takesValue = (option: Option): boolean => option.required || option.optional;

/** Repeatable (a flag given several times collects its values, as --param does): a list in the file is folded. */
export const repeatable = (option: Option): boolean => Array.isArray(option.defaultValue) || option.variadic;

/** A value through the flag's parser (and its choices), as commander would parse it from the command line. */
export function parseWith(option: Option, value: string, previous: unknown): unknown {
  return option.parseArg ? option.parseArg(value, previous) : value;
}

function parseBoolean(value: string): boolean {
  if (/^(true|1|yes|on)$/i.test(value)) return true;
  if (/^(false|0|no|off)$/i.test(value)) return false;
  throw new Error('expected true or false');
}

/** A value as an error message may show it: a URL's password masked. */
const shown = (value: string): string => value.replace(/(\/\/[^/@:\s]*:)[^@/\s]*@/, '$1***@');

/** A value from the environment for `option`. */
function fromEnvironment(option: Option, name: string, raw: string): unknown {
  try {
    return takesValue(option) ? parseWith(option, raw, option.defaultValue) : parseBoolean(raw);
  } catch (error) {
    throw new ConfigError(`${name}="${shown(raw)}" (for ${option.long}): ${describeError(error)}`);
  }
}

/**
 * Fills the options of `command` that the command line left unset: from the environment, else from the config file
 * (`--config` or APILOG_CONFIG, read against `reference()`: every command defined in full). Run before the action.
 */
export async function applyConfiguration(command: Command, reference: () => Promise<Command>, env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const configPath = (command.getOptionValue('config') as string | undefined) ?? (env[CONFIG_ENVIRONMENT_NAME] || undefined);
  let fromFileValues: ReadonlyMap<string, unknown> = new Map();
  if (configPath !== undefined) {
    const path: string[] = [];
    for (let c: Command | null = command; c?.parent; c = c.parent) path.unshift(c.name());
    // The file's parser (yaml, zod) loads only when there is a file.
    const { readConfigFile } = await import('./configFile.ts');
    fromFileValues = readConfigFile(configPath, await reference(), env).get(path.join(' ')) ?? new Map();
  }
  for (const option of configurableOptions(command)) {
    const key = option.attributeName();
    if (command.getOptionValueSource(key) === 'cli') continue;
    const name = environmentNameOf(option);
    const raw = env[name];
    if (raw !== undefined && raw !== '') command.setOptionValueWithSource(key, fromEnvironment(option, name, raw), 'env');
    else if (fromFileValues.has(key)) command.setOptionValueWithSource(key, fromFileValues.get(key), 'config');
  }
}

/** commander's option description, followed by the option's environment variable (for configureHelp). */
export function optionDescriptionWithEnvironment(this: Help, option: Option): string {
  const base = Help.prototype.optionDescription.call(this, option);
  if (option.long === '--config') return `${base} [env ${CONFIG_ENVIRONMENT_NAME}]`;
  if (option.hidden || option.long === undefined || option.long === '--version' || option.long === '--help') return base;
  return `${base} [env ${environmentNameOf(option)}]`;
}
