// A TCP proxy in front of the test's PostgreSQL that a test can take down or freeze, so database
// faults are injected without touching a server other tests share.
import net from "node:net";

interface Pair {
  client: net.Socket;
  upstream?: net.Socket;
  /** Nothing passes while held: bytes wait in the queues below. */
  held: boolean;
  /** Bytes held while paused, in each direction. */
  toUpstream: Buffer[];
  toClient: Buffer[];
}

export class TcpProxy {
  private readonly server = net.createServer((socket) => this.accept(socket));
  private readonly pairs = new Set<Pair>();
  private paused = false;
  private port = 0;

  private constructor(private readonly target: URL) {}

  /** A proxy listening on an ephemeral loopback port, forwarding to `targetUrl`'s host and port. */
  static async start(targetUrl: string): Promise<TcpProxy> {
    const proxy = new TcpProxy(new URL(targetUrl));
    await proxy.listen();
    return proxy;
  }

  /** `targetUrl` with its host and port replaced by the proxy's. */
  url(targetUrl: string): string {
    const url = new URL(targetUrl);
    url.hostname = "127.0.0.1";
    url.port = String(this.port);
    return url.toString();
  }

  /** Every connection closed and no new one accepted (ECONNREFUSED): a stopped database. */
  async down(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const pair of this.pairs) this.drop(pair);
    await closed;
  }

  /** Accepting again, on the same port. */
  async up(): Promise<void> {
    await this.listen(this.port);
  }

  /**
   * Connections stay open and new ones are accepted, but nothing is answered: a frozen database (or
   * a network that silently drops everything).
   */
  pause(): void {
    this.paused = true;
    for (const pair of this.pairs) pair.held = true;
  }

  /**
   * The connections open now stop answering while new ones work: half-open connections after a
   * network blip or a failover, which only the client's own read timeout can notice.
   */
  freezeOpen(): void {
    for (const pair of this.pairs) pair.held = true;
  }

  resume(): void {
    this.paused = false;
    for (const pair of this.pairs) {
      pair.held = false;
      if (!pair.upstream) this.connectUpstream(pair);
      else this.flush(pair);
    }
  }

  /** Open client connections. */
  get connections(): number {
    return this.pairs.size;
  }

  async close(): Promise<void> {
    for (const pair of this.pairs) this.drop(pair);
    if (this.server.listening) await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private async listen(port = 0): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(port, "127.0.0.1", () => {
        this.server.off("error", reject);
        resolve();
      });
    });
    this.port = (this.server.address() as net.AddressInfo).port;
  }

  private accept(client: net.Socket): void {
    const pair: Pair = { client, held: this.paused, toUpstream: [], toClient: [] };
    this.pairs.add(pair);
    client.on("error", () => {});
    client.on("close", () => this.drop(pair));
    client.on("data", (chunk: Buffer) => {
      if (pair.held || !pair.upstream || pair.upstream.connecting) pair.toUpstream.push(chunk);
      else pair.upstream.write(chunk);
    });
    if (!pair.held) this.connectUpstream(pair);
  }

  private connectUpstream(pair: Pair): void {
    const upstream = net.connect(Number(this.target.port || 5432), this.target.hostname);
    pair.upstream = upstream;
    upstream.on("error", () => {});
    upstream.on("close", () => this.drop(pair));
    upstream.on("connect", () => this.flush(pair));
    upstream.on("data", (chunk: Buffer) => {
      if (pair.held) pair.toClient.push(chunk);
      else pair.client.write(chunk);
    });
  }

  private flush(pair: Pair): void {
    if (pair.held || !pair.upstream || pair.upstream.connecting) return;
    for (const chunk of pair.toUpstream.splice(0)) pair.upstream.write(chunk);
    for (const chunk of pair.toClient.splice(0)) pair.client.write(chunk);
  }

  private drop(pair: Pair): void {
    if (!this.pairs.delete(pair)) return;
    pair.client.destroy();
    pair.upstream?.destroy();
  }
}
