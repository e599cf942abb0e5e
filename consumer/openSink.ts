/** `--clickhouse` / CLICKHOUSE_URL: http(s)://… is a server, anything else a directory for the embedded engine. */
import { ChdbSink } from './chdbSink.ts';
import { ClickHouseServerSink } from './clickhouseServerSink.ts';
import type { Sink } from './sink.ts';

export function isServerUrl(target: string): boolean {
  return /^https?:\/\//i.test(target);
}

/** `caCert`: PEM CA for an https:// server signed by a private CA; `requestTimeoutMs`: see ServerSinkOptions. */
export function openSink(target: string, options: { caCert?: Buffer; requestTimeoutMs?: number } = {}): Sink {
  if (!isServerUrl(target)) return new ChdbSink(target);
  return new ClickHouseServerSink({
    url: target,
    ...(options.caCert !== undefined ? { caCert: options.caCert } : {}),
    ...(options.requestTimeoutMs !== undefined ? { requestTimeoutMs: options.requestTimeoutMs } : {}),
  });
}
