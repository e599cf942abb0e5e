/**
 * A TCP proxy that delays requests, for the fault tests: it stands between a client and a real server (ClickHouse)
 * and forwards everything, except that it can *hold* requests: the bytes of a held HTTP request (and everything the
 * client sends after it on that connection) stay in the proxy, as in the socket buffer of a frozen or overloaded
 * server, until `release()` sends them on. The client may give up, time out or be killed meanwhile; when its
 * connection closes, the proxy keeps the bytes (the server would have them) and closes the server side only after
 * sending them, so the server still reads a complete request and runs it, later. This is how an insert "waits at the
 * server" and lands after its sender's successor read what is stored: made certain instead of likely.
 *
 * A held request goes to the server on a connection of its own when released (the client's connection to the server
 * may have been closed as idle by then; a frozen server could not have closed it). Requests are recognized by the
 * first chunk of a request on a connection (Node's HTTP client writes the request line and headers as one chunk);
 * `holdWhen` decides from that chunk whether to hold it.
 */
import { createServer, connect, type Server, type Socket } from 'node:net';

interface Held {
  readonly client: Socket;
  readonly chunks: Buffer[];
  clientClosed: boolean;
}

/** Whether `bytes` hold a whole HTTP request: headers, and a body of Content-Length bytes or a last chunk. */
export function isCompleteRequest(bytes: Buffer): boolean {
  const end = bytes.indexOf('\r\n\r\n');
  if (end < 0) return false;
  const headers = bytes.subarray(0, end).toString('latin1');
  const length = /\r\ncontent-length:\s*(\d+)/i.exec(headers);
  if (length) return bytes.length - (end + 4) >= Number(length[1]);
  if (/\r\ntransfer-encoding:\s*chunked/i.test(headers)) return bytes.subarray(end + 4).toString('latin1').endsWith('0\r\n\r\n');
  return true;
}

export interface TcpProxyOptions {
  readonly targetHost: string;
  readonly targetPort: number;
}

export class TcpProxy {
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();
  private readonly held: Held[] = [];
  /** Holds every request whose first chunk this returns true for (none by default). */
  holdWhen: (firstChunk: string) => boolean = () => false;
  /** Requests held so far (released or not). */
  heldCount = 0;
  /** Requests forwarded without holding whose first chunk matched `count`. */
  private counted = 0;
  count: (firstChunk: string) => boolean = () => false;

  private constructor(private readonly options: TcpProxyOptions) {
    this.server = createServer((client) => this.onClient(client));
  }

  static async start(options: TcpProxyOptions): Promise<TcpProxy> {
    const proxy = new TcpProxy(options);
    await new Promise<void>((resolve, reject) => {
      proxy.server.once('error', reject);
      proxy.server.listen(0, '127.0.0.1', () => resolve());
    });
    return proxy;
  }

  /** A proxy in front of the server at `url` (an http:// address). */
  static inFrontOf(url: string): Promise<TcpProxy> {
    const target = new URL(url);
    return TcpProxy.start({ targetHost: target.hostname, targetPort: Number(target.port) });
  }

  get port(): number {
    const address = this.server.address();
    if (address === null || typeof address === 'string') throw new Error('proxy not listening');
    return address.port;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Requests held and not yet released. */
  get waiting(): number {
    return this.held.length;
  }

  /** Held requests whose bytes are all here (the client sent the whole request). */
  get waitingComplete(): number {
    return this.held.filter((h) => isCompleteRequest(Buffer.concat(h.chunks))).length;
  }

  /** Requests that matched `count` and went through. */
  get passed(): number {
    return this.counted;
  }

  private onClient(client: Socket): void {
    const upstream = connect(this.options.targetPort, this.options.targetHost);
    this.sockets.add(client);
    this.sockets.add(upstream);
    let holding: Held | undefined;
    let clientGone = false;
    client.on('data', (chunk: Buffer) => {
      if (holding === undefined) {
        const head = chunk.subarray(0, 4096).toString('latin1');
        if (/^[A-Z]+ \S+ HTTP\/1\.[01]\r\n/.test(head) && this.holdWhen(head)) {
          holding = { client, chunks: [], clientClosed: false };
          this.held.push(holding);
          this.heldCount++;
        } else if (/^[A-Z]+ \S+ HTTP\/1\.[01]\r\n/.test(head) && this.count(head)) {
          this.counted++;
        }
      }
      if (holding !== undefined) holding.chunks.push(chunk);
      else upstream.write(chunk);
    });
    client.on('close', () => {
      clientGone = true;
      this.sockets.delete(client);
      if (holding !== undefined) holding.clientClosed = true;
      upstream.end();
    });
    client.on('error', () => undefined);
    upstream.on('data', (chunk: Buffer) => {
      if (!clientGone) client.write(chunk);
    });
    upstream.on('close', () => {
      this.sockets.delete(upstream);
      if (!clientGone) client.end();
    });
    upstream.on('error', () => {
      if (!clientGone) client.destroy();
    });
  }

  /** Sends every held request on to the server, each on a new connection (answers reach clients still there). */
  release(): void {
    for (const held of this.held.splice(0)) {
      const upstream = connect(this.options.targetPort, this.options.targetHost);
      this.sockets.add(upstream);
      upstream.on('data', (chunk: Buffer) => {
        if (!held.clientClosed) held.client.write(chunk);
      });
      upstream.on('error', () => undefined);
      upstream.on('close', () => this.sockets.delete(upstream));
      for (const chunk of held.chunks) upstream.write(chunk);
      if (held.clientClosed) upstream.end();
    }
  }

  /** Drops every connection and stops listening; held requests are discarded. */
  async close(): Promise<void> {
    this.held.length = 0;
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** True for the first chunk of an HTTP request that runs an INSERT (ClickHouse's HTTP interface, query in the URL). */
export const isInsertRequest = (head: string) => /^POST \/\?[^ ]*query=INSERT(%20|\+)INTO/i.test(head);
