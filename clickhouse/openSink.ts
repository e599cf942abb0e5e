/**
 * `--clickhouse` / CLICKHOUSE_URL: http(s)://… is a server, several comma-separated http(s)://… URLs are the replicas
 * of one shard (replicas.ts), anything else a directory for the embedded engine.
 * Each sink's module is imported only when it is opened: the embedded engine (chdb, ~540 MB of native library)
 * is never loaded by a command that talks to a server, nor the server's client by one that embeds the engine.
 */
import { ConfigError } from '../runtime/errors.ts';
import type { Sink } from './sink.ts';

export function isServerUrl(target: string): boolean {
  return /^https?:\/\//i.test(target);
}

/** The server URLs of a `--clickhouse` value: one, or the replicas of a shard, comma-separated. */
export function serverUrls(target: string): string[] {
  const urls = target.split(',').map((u) => u.trim()).filter((u) => u.length > 0);
  for (const url of urls) {
    if (!isServerUrl(url)) throw new ConfigError(`ClickHouse "${url}" in "${target}": several servers are given as http(s):// URLs separated by commas`);
  }
  if (new Set(urls).size !== urls.length) throw new ConfigError(`ClickHouse "${target}" names a server twice`);
  return urls;
}

export interface OpenSinkOptions {
  /** PEM CA for an https:// server signed by a private CA. */
  readonly caCert?: Buffer;
  /** See ServerSinkOptions. */
  readonly requestTimeoutMs?: number;
}

export async function openSink(target: string, options: OpenSinkOptions = {}): Promise<Sink> {
  if (!isServerUrl(target.trim())) {
    const { ChdbSink } = await import('./chdbSink.ts');
    return new ChdbSink(target);
  }
  const { ClickHouseServerSink } = await import('./serverSink.ts');
  const servers = serverUrls(target).map(
    (url) =>
      new ClickHouseServerSink({
        url,
        ...(options.caCert !== undefined ? { caCert: options.caCert } : {}),
        ...(options.requestTimeoutMs !== undefined ? { requestTimeoutMs: options.requestTimeoutMs } : {}),
      }),
  );
  if (servers.length === 1) return servers[0]!;
  const { ClickHouseReplicas } = await import('./replicas.ts');
  return new ClickHouseReplicas(servers);
}
