/**
 * The config file of `--config` / APILOG_CONFIG (config.ts says what it holds and where it stands among the
 * sources): read with yaml (JSON is YAML), `${NAME}` references replaced in values, the shape checked with zod
 * against every command's flags, each value parsed by its flag's parser; every mistake reported with its line.
 */
import { readFileSync } from 'node:fs';
import type { Command, Option } from 'commander';
import { isMap, isScalar, LineCounter, parseDocument, visit, type Document } from 'yaml';
import { z } from 'zod';
import { ConfigError, describeError } from '../runtime/errors.ts';
import { configurableOptions, keyOf, parseWith, repeatable, takesValue } from './config.ts';

type FileValue = string | number | boolean | readonly (string | number)[];

/** A value from the config file for `option` (its type already checked); throws the parser's error. */
function fromFile(option: Option, value: FileValue): unknown {
  if (!takesValue(option)) return value;
  if (Array.isArray(value)) {
    if (repeatable(option)) return value.reduce<unknown>((previous, item) => parseWith(option, String(item), previous), option.defaultValue);
    return parseWith(option, value.map(String).join(','), option.defaultValue); // a comma-separated flag (--brokers)
  }
  return parseWith(option, String(value), option.defaultValue);
}

/** `${NAME}`, `${NAME:-fallback}`, and `$${` for a literal `${`. */
const REFERENCE = /\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;

/** Replaces the environment references of a string; the names of unset variables go to `missing`. */
export function interpolate(text: string, env: NodeJS.ProcessEnv, missing: string[]): string {
  return text.replace(REFERENCE, (match, name: string | undefined, fallback: string | undefined) => {
    if (name === undefined) return '${';
    const value = env[name];
    if (value !== undefined && value !== '') return value;
    if (fallback !== undefined) return fallback;
    missing.push(name);
    return match;
  });
}

/** What a config file sets, by command path ('consume', 'schemas check'): option attribute name → parsed value. */
export type ConfigValues = ReadonlyMap<string, ReadonlyMap<string, unknown>>;

/** Every command of a tree with its path ('schemas check'), parents first. */
function commandsOf(root: Command, prefix: readonly string[] = []): { path: readonly string[]; command: Command }[] {
  return root.commands.flatMap((c) => [{ path: [...prefix, c.name()], command: c }, ...commandsOf(c, [...prefix, c.name()])]);
}

const fileValueSchema = z.union([z.string(), z.number(), z.array(z.union([z.string(), z.number()]))]);

/** The shape of a file for the commands of `root`: known keys only, booleans for boolean flags. */
function fileSchema(root: Command): z.ZodType {
  const section = (command: Command): z.ZodType => {
    const shape: Record<string, z.ZodType> = {};
    for (const option of configurableOptions(command)) shape[keyOf(option)] = (takesValue(option) ? fileValueSchema : z.boolean()).nullish();
    for (const sub of command.commands) shape[sub.name()] = section(sub).nullish();
    return z.strictObject(shape);
  };
  const top: Record<string, z.ZodType> = {};
  for (const { command } of commandsOf(root)) {
    for (const option of configurableOptions(command)) top[keyOf(option)] ??= (takesValue(option) ? fileValueSchema : z.boolean()).nullish();
  }
  for (const command of root.commands) top[command.name()] = section(command).nullish();
  return z.strictObject(top);
}

/** `line N` of the node at `path` in the document (the key's line for a key), or '' when it cannot be found. */
function lineOf(doc: Document, lines: LineCounter, path: readonly PropertyKey[], key?: string): string {
  let node = doc.getIn(path as unknown[], true);
  if (key !== undefined && isMap(node)) node = node.items.find((pair) => isScalar(pair.key) && pair.key.value === key)?.key;
  const offset = (node as { range?: [number, number, number] } | undefined)?.range?.[0];
  return offset === undefined ? '' : `line ${lines.linePos(offset).line}`;
}

/**
 * Reads, interpolates and validates a config file against the commands of `root` (every subcommand defined in
 * full); returns what it sets for each command. A ConfigError lists every mistake with its line and key.
 */
export function readConfigFile(path: string, root: Command, env: NodeJS.ProcessEnv = process.env): ConfigValues {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new ConfigError(`config file ${path}: ${describeError(error)}`);
  }
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines });
  const syntax = doc.errors[0];
  if (syntax !== undefined) {
    const at = syntax.linePos?.[0];
    throw new ConfigError(`config file ${path}${at ? ` line ${at.line}` : ''}: ${syntax.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '')}`);
  }
  const problems: { line: number; text: string }[] = [];
  const problem = (where: string, text: string) => {
    const line = Number(/\d+/.exec(where)?.[0] ?? 0);
    if (!problems.some((p) => p.text === `${where}${text}`)) problems.push({ line, text: `${where}${text}` });
  };
  // References are replaced in values only (never in keys), after parsing: a secret's characters cannot change the structure.
  visit(doc, {
    Scalar(key, node) {
      if (key === 'key' || typeof node.value !== 'string') return;
      const missing: string[] = [];
      node.value = interpolate(node.value, env, missing);
      for (const name of missing) problem(`line ${lines.linePos(node.range![0]).line}`, `: \${${name}} is not set in the environment`);
    },
  });
  const file = (doc.toJS() ?? {}) as Record<string, unknown>;
  const shape = fileSchema(root).safeParse(file);
  if (!shape.success) {
    for (const issue of shape.error.issues) {
      for (const key of issue.code === 'unrecognized_keys' ? issue.keys : [undefined]) {
        const field = [...issue.path, ...(key === undefined ? [] : [key])].join('.');
        problem(lineOf(doc, lines, issue.path, key), `, ${field}: ${issue.code === 'unrecognized_keys' ? 'unknown key' : issue.message}`);
      }
    }
  }
  // Each command's values through its flags' parsers; a value of the wrong type was reported above and is skipped.
  // A top-level value is parsed once per command that takes it: a refusal names the commands unless all refuse it.
  const refused = new Map<string, { where: string[]; message: string; commands: string[] }>();
  const takers = new Map<string, number>();
  const values = new Map<string, Map<string, unknown>>();
  for (const { path: commandPath, command } of commandsOf(root)) {
    let section: unknown = file;
    for (const name of commandPath) section = typeof section === 'object' && section !== null ? (section as Record<string, unknown>)[name] : undefined;
    const own = typeof section === 'object' && section !== null ? (section as Record<string, unknown>) : {};
    const set = new Map<string, unknown>();
    for (const option of configurableOptions(command)) {
      const key = keyOf(option);
      const where = own[key] != null ? [...commandPath, key] : [key];
      const value = own[key] ?? file[key];
      if (value == null || !(takesValue(option) ? fileValueSchema : z.boolean()).safeParse(value).success) continue;
      takers.set(where.join('.'), (takers.get(where.join('.')) ?? 0) + 1);
      try {
        set.set(option.attributeName(), fromFile(option, value as FileValue));
      } catch (error) {
        const message = describeError(error);
        const entry = refused.get(`${where.join('.')}\n${message}`) ?? { where, message, commands: [] };
        entry.commands.push(commandPath.join(' '));
        refused.set(`${where.join('.')}\n${message}`, entry);
      }
    }
    values.set(commandPath.join(' '), set);
  }
  for (const { where, message, commands } of refused.values()) {
    const some = commands.length < (takers.get(where.join('.')) ?? 0) ? ` (for ${commands.join(', ')})` : '';
    problem(lineOf(doc, lines, where), `, ${where.join('.')}: ${message}${some}`);
  }
  if (problems.length > 0) {
    throw new ConfigError(`config file ${path}: ${problems.sort((a, b) => a.line - b.line).map((p) => p.text).join('; ')}`);
  }
  return values;
}
