/**
 * Where the local stack serves, and therefore the defaults of every `apilog` command.
 * One place, so the stack, the CLI, the tests and docker-compose.yml agree.
 */
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const KAFKA_PORT = 9092;
export const KAFKA_CONTROLLER_PORT = 9093;
export const REGISTRY_PORT = 8081;
export const CLICKHOUSE_HTTP_PORT = 8123;
export const CLICKHOUSE_TCP_PORT = 9000;

export const LOCAL_KAFKA_BROKERS = `127.0.0.1:${KAFKA_PORT}`;
/** Apicurio Registry serves the Confluent API under /apis/ccompat/v7. */
export const LOCAL_SCHEMA_REGISTRY_URL = `http://127.0.0.1:${REGISTRY_PORT}/apis/ccompat/v7`;
export const LOCAL_CLICKHOUSE_SERVER_URL = `http://127.0.0.1:${CLICKHOUSE_HTTP_PORT}`;
export const DEFAULT_TOPIC = 'api-calls';

/** The nearest folder at or above `dir` that holds a package.json. */
function packageRoot(dir: string): string {
  for (let d = dir; ; d = dirname(d)) {
    if (existsSync(join(d, 'package.json'))) return d;
    if (dirname(d) === d) throw new Error(`no package.json at or above ${dir}`);
  }
}

/** The repository root: this file is <root>/stack/endpoints.ts, or <root>/dist/stack/endpoints.js once built. */
export const PROJECT_ROOT = packageRoot(resolve(dirname(fileURLToPath(import.meta.url)), '..'));

/** Runtime state of the local stack: pids, logs, data, the env file. Override with APILOG_STACK_DIR. */
export const STACK_DIR = resolve(process.env['APILOG_STACK_DIR'] ?? join(PROJECT_ROOT, '.stack'));

/** Downloads shared by every checkout on this machine. Override with APILOG_CACHE_DIR. */
export const CACHE_DIR = resolve(process.env['APILOG_CACHE_DIR'] ?? join(homedir(), '.cache', 'apilog'));

/** The embedded engine's default data directory (used by `apilog demo`). */
export const LOCAL_CHDB_DIR = join(STACK_DIR, 'chdb');

export const ENV_FILE = join(STACK_DIR, 'env');

export interface StackEnv {
  readonly KAFKA_BROKERS: string;
  readonly SCHEMA_REGISTRY_URL: string;
  readonly CLICKHOUSE_URL: string;
}

/** Reads `.stack/env` (KEY=value lines) if it exists. */
export function readStackEnv(file = ENV_FILE): Partial<StackEnv> | undefined {
  if (!existsSync(file)) return undefined;
  const out: Record<string, string> = {};
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const m = /^([A-Z_][A-Z0-9_]*)=(.*)$/.exec(line.trim());
    if (m) out[m[1]!] = m[2]!.replace(/^['"]|['"]$/g, '');
  }
  return out;
}
