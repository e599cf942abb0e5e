/**
 * `--clickhouse` / CLICKHOUSE_URL: http(s)://… is a server, anything else a directory for the embedded engine.
 * Each sink's module is imported only when it is opened: the embedded engine (chdb, ~540 MB of native library)
 * is never loaded by a command that talks to a server, nor the server's client by one that embeds the engine.
 */
import type { Sink } from './sink.ts';

export function isServerUrl(target: string): boolean {
  return /^https?:\/\//i.test(target);
}

/** `caCert`: PEM CA for an https:// server signed by a private CA; `requestTimeoutMs`: see ServerSinkOptions. */
export async function openSink(target: string, options: { caCert?: Buffer; requestTimeoutMs?: number } = {}): Promise<Sink> {
  if (!isServerUrl(target)) {
    const { ChdbSink } = await import('./chdbSink.ts');
    return new ChdbSink(target);
  }
  const { ClickHouseServerSink } = await import('./serverSink.ts');
  return new ClickHouseServerSink({
    url: target,
    ...(options.caCert !== undefined ? { caCert: options.caCert } : {}),
    ...(options.requestTimeoutMs !== undefined ? { requestTimeoutMs: options.requestTimeoutMs } : {}),
  });
}
