/** `--clickhouse` / CLICKHOUSE_URL: http(s)://… is a server, anything else a directory for the embedded engine. */
import { ChdbSink } from './chdbSink.ts';
import { ClickHouseServerSink } from './clickhouseServerSink.ts';
import type { Sink } from './sink.ts';

export function isServerUrl(target: string): boolean {
  return /^https?:\/\//i.test(target);
}

export function openSink(target: string): Sink {
  return isServerUrl(target) ? new ClickHouseServerSink({ url: target }) : new ChdbSink(target);
}
