/**
 * The write-ahead ledger of a partition, kept in the metadata of its committed Kafka offset.
 *
 * Before a batch's rows are sent to ClickHouse, the owner commits the batch's first offset again with an *intent*:
 * the batch's last offset, the deduplication token its inserts carry, and the entry table they go through (server
 * sinks; see clickhouseRows.ts). After the batch is durable it commits the next offset with a *clean* record. The
 * group coordinator refuses commits from an older generation, so the ledger a new owner reads (after it joined) is
 * the last one any earlier owner wrote, and it bounds what earlier owners can have sent:
 * - clean at offset C: no row at or after C was sent, nothing to look for;
 * - an intent at C up to L: rows in [C, L] may be stored, or be on their way through the named entry (which the new
 *   owner fences first), nothing after L was sent; the new owner re-sends the same batch with the same token, so the
 *   raw table and every materialized view on it take the batch once;
 * - anything else (no commit, another tool's metadata, offsets reset by hand): nothing is known, ClickHouse is read.
 */

/**
 * What the committed metadata of a partition says. `upTo`: an earlier owner's rows may be stored up to this offset
 * beyond the committed one (found by a recovery and already fenced; the owner that found them skips them, and passes
 * the bound on until it has gone past it).
 */
export type LedgerRecord =
  | { readonly kind: 'clean'; readonly upTo?: number }
  | { readonly kind: 'intent'; readonly last: number; readonly token: string; readonly entry: string | undefined; readonly upTo?: number }
  | { readonly kind: 'unknown' };

const VERSION = 1;

/** The metadata committed once a batch is durable: nothing after the committed offset was sent (up to `upTo` aside). */
export function cleanMetadata(upTo?: number): string {
  return JSON.stringify(upTo === undefined ? { apilog: VERSION } : { apilog: VERSION, upTo });
}

export const CLEAN_METADATA = cleanMetadata();

/** The metadata committed (at the batch's first offset) before the batch's rows are sent. */
export function intentMetadata(last: number, token: string, entry: string | undefined, upTo?: number): string {
  return JSON.stringify({ apilog: VERSION, last, token, ...(entry !== undefined ? { entry } : {}), ...(upTo !== undefined ? { upTo } : {}) });
}

const isOffset = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

/** Reads committed metadata; anything not written by this version of apilog is 'unknown'. */
export function parseLedger(metadata: string | null | undefined): LedgerRecord {
  if (metadata === null || metadata === undefined || !metadata.startsWith('{')) return { kind: 'unknown' };
  let value: unknown;
  try {
    value = JSON.parse(metadata);
  } catch {
    return { kind: 'unknown' };
  }
  if (typeof value !== 'object' || value === null || (value as { apilog?: unknown }).apilog !== VERSION) return { kind: 'unknown' };
  const { last, token, entry, upTo } = value as { last?: unknown; token?: unknown; entry?: unknown; upTo?: unknown };
  if (upTo !== undefined && !isOffset(upTo)) return { kind: 'unknown' };
  const bound = upTo === undefined ? {} : { upTo };
  if (last === undefined && token === undefined) return { kind: 'clean', ...bound };
  if (!isOffset(last) || typeof token !== 'string' || token === '') return { kind: 'unknown' };
  if (entry !== undefined && typeof entry !== 'string') return { kind: 'unknown' };
  return { kind: 'intent', last, token, entry, ...bound };
}
