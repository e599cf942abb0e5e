/**
 * The on-disk spool: an append-only file of encoded messages that holds what the broker cannot take during an
 * outage, drained in order when it returns. One data file (`spool.data`) and the committed read position
 * (`spool.offset`, written after each batch is acknowledged). When everything is drained the file is truncated.
 *
 * Record layout: u32 BE length of the rest, u8 hot-key slot, u16 BE key length, key (UTF-8), value (framed Avro).
 *
 * Guarantees: within one process, each record is sent once and in order (the sender retries a batch until it
 * is acknowledged before it commits the position). Across a crash of the process, records after the last
 * committed position are sent again: at least once (the consumer deduplicates by event_id). Writes are not
 * fsynced: the spool protects against a broker outage, not against the machine losing power.
 */
import { mkdirSync } from 'node:fs';
import { open, readFile, rename, writeFile, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { ApilogError } from '../runtime/errors.ts';
import type { SlottedMessage } from './partitioner.ts';

const RECORD_HEADER = 4 + 1 + 2;
/** Bytes read at a time when the spool is opened and its records are walked. */
const SCAN_WINDOW = 1 << 20;

export interface SpoolBatch {
  readonly messages: SlottedMessage[];
  /** The read position after this batch: commit it once the batch is acknowledged. */
  readonly nextOffset: number;
  /** How many of the messages were spooled by an earlier process (replayed after a restart). */
  readonly replayed: number;
}

export class Spool {
  private handle: FileHandle | undefined;
  private size = 0;
  private readOffset = 0;
  /** Records before this position were written by an earlier process. */
  private replayEnd = 0;

  private constructor(
    readonly dir: string,
    readonly maxBytes: number,
  ) {}

  static async open(dir: string, maxBytes: number): Promise<Spool> {
    mkdirSync(dir, { recursive: true });
    const spool = new Spool(dir, maxBytes);
    await spool.load();
    return spool;
  }

  private get dataFile(): string {
    return join(this.dir, 'spool.data');
  }

  private get offsetFile(): string {
    return join(this.dir, 'spool.offset');
  }

  private async load(): Promise<void> {
    this.handle = await open(this.dataFile, 'a+');
    this.size = (await this.handle.stat()).size;
    try {
      this.readOffset = Number.parseInt((await readFile(this.offsetFile, 'utf8')).trim(), 10);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      this.readOffset = 0;
    }
    if (!Number.isSafeInteger(this.readOffset) || this.readOffset < 0 || this.readOffset > this.size) {
      throw new ApilogError(`spool offset file ${this.offsetFile} holds ${this.readOffset}, outside 0..${this.size}`);
    }
    // A crash in the middle of an append leaves a torn last record: cut it off.
    const end = await this.lastWholeRecordEnd();
    if (end < this.size) {
      await this.handle.truncate(end);
      this.size = end;
    }
    this.replayEnd = this.size;
  }

  /** Walks the record headers from the read position through 1 MiB windows (not one read per record). */
  private async lastWholeRecordEnd(): Promise<number> {
    const window = Buffer.allocUnsafe(SCAN_WINDOW);
    let start = 0; // file position of window[0]
    let end = 0; // file position after the window's last byte read
    let pos = this.readOffset;
    while (pos + 4 <= this.size) {
      if (pos + 4 > end) {
        const { bytesRead } = await this.handle!.read(window, 0, SCAN_WINDOW, pos);
        start = pos;
        end = pos + bytesRead;
        if (bytesRead < 4) break;
      }
      const next = pos + 4 + window.readUInt32BE(pos - start);
      if (next > this.size) break;
      pos = next;
    }
    return pos;
  }

  /** Bytes waiting to be sent. */
  get pendingBytes(): number {
    return this.size - this.readOffset;
  }

  get hasData(): boolean {
    return this.readOffset < this.size;
  }

  /** Appends messages in order. Returns how many fitted under maxBytes (the rest are the caller's to count as dropped). */
  async append(messages: readonly SlottedMessage[]): Promise<number> {
    let total = 0;
    let fitted = 0;
    for (const m of messages) {
      const bytes = RECORD_HEADER + Buffer.byteLength(m.key) + m.value.length;
      if (this.pendingBytes + total + bytes > this.maxBytes) break;
      total += bytes;
      fitted++;
    }
    if (fitted === 0) return 0;
    const out = Buffer.allocUnsafe(total);
    let pos = 0;
    for (let i = 0; i < fitted; i++) {
      const m = messages[i]!;
      const keyLength = out.write(m.key, pos + RECORD_HEADER, 'utf8');
      out.writeUInt32BE(1 + 2 + keyLength + m.value.length, pos);
      out.writeUInt8(m.slot, pos + 4);
      out.writeUInt16BE(keyLength, pos + 5);
      m.value.copy(out, pos + RECORD_HEADER + keyLength);
      pos += RECORD_HEADER + keyLength + m.value.length;
    }
    await this.handle!.write(out, 0, pos, this.size);
    this.size += pos;
    return fitted;
  }

  /** Reads up to `maxEvents` messages (about `maxBytes`) from the read position, without consuming them. */
  async read(maxEvents: number, maxBytes: number): Promise<SpoolBatch> {
    const length = Math.min(this.size - this.readOffset, Math.max(maxBytes, 64 * 1024));
    const buf = Buffer.allocUnsafe(length);
    const { bytesRead } = await this.handle!.read(buf, 0, length, this.readOffset);
    const messages: SlottedMessage[] = [];
    let pos = 0;
    let replayed = 0;
    while (messages.length < maxEvents && pos + 4 <= bytesRead) {
      const recordLength = buf.readUInt32BE(pos);
      const end = pos + 4 + recordLength;
      if (end > bytesRead) {
        if (messages.length === 0) {
          // One record larger than the read window: read exactly it.
          const big = Buffer.allocUnsafe(4 + recordLength);
          await this.handle!.read(big, 0, big.length, this.readOffset);
          messages.push(parseRecord(big, 0));
          pos = big.length;
          if (this.readOffset < this.replayEnd) replayed++;
        }
        break;
      }
      messages.push(parseRecord(buf, pos));
      if (this.readOffset + pos < this.replayEnd) replayed++;
      pos = end;
    }
    return { messages, nextOffset: this.readOffset + pos, replayed };
  }

  /** Marks everything before `offset` as sent; truncates the file when it is all sent. */
  async commit(offset: number): Promise<void> {
    if (offset < this.readOffset || offset > this.size) throw new ApilogError(`spool commit ${offset} outside ${this.readOffset}..${this.size}`);
    this.readOffset = offset;
    if (this.readOffset === this.size) {
      await this.handle!.truncate(0);
      this.size = 0;
      this.readOffset = 0;
      this.replayEnd = 0;
    }
    // Written to a temporary name and renamed, so a crash never leaves a half-written position.
    const tmp = `${this.offsetFile}.tmp`;
    await writeFile(tmp, `${this.readOffset}\n`);
    await rename(tmp, this.offsetFile);
  }

  async close(): Promise<void> {
    await this.handle?.close();
    this.handle = undefined;
  }
}

function parseRecord(buf: Buffer, pos: number): SlottedMessage {
  const recordLength = buf.readUInt32BE(pos);
  const slot = buf.readUInt8(pos + 4);
  const keyLength = buf.readUInt16BE(pos + 5);
  const keyStart = pos + 7;
  const key = buf.toString('utf8', keyStart, keyStart + keyLength);
  // A copy, so the read buffer can be dropped once the batch is built.
  const value = Buffer.from(buf.subarray(keyStart + keyLength, pos + 4 + recordLength));
  return { key, value, slot };
}
