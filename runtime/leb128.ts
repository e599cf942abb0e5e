/**
 * Unsigned LEB128 (7 bits a byte, low first, the high bit set on all but the last): ClickHouse's RowBinary lengths,
 * Kafka's record varints and Avro's ints and longs (after zigzag; schemas/avroWriter.ts) are written with it. Exact for
 * any integer a double holds exactly (every safe integer, and the even ones below 2^54 a zigzagged long reaches).
 */

/** Writes `n` at `p`; returns the position after it. */
export function writeLeb(buf: Buffer, p: number, n: number): number {
  while (n >= 0x80) {
    buf[p++] = (n & 0x7f) | 0x80;
    n = Math.floor(n / 128);
  }
  buf[p] = n;
  return p + 1;
}

/** Bytes `writeLeb` takes for `n`. */
export function lebSize(n: number): number {
  let bytes = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 128);
    bytes++;
  }
  return bytes;
}
