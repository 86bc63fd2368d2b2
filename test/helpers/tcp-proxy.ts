// A TCP proxy a test puts in front of its database to take the database away and bring it back,
// as a network or an operator would, without touching the PostgreSQL that other test files share:
// `cut()` resets every connection and refuses new ones (the server is down), `pause()` holds every
// byte both ways and leaves new connections unanswered (the server is frozen, or the network
// dropped), `restore()` brings either back (a paused connection carries on where it stopped).
import net from "node:net";

interface Pair {
  client: net.Socket;
  upstream: net.Socket | undefined;
  /** Bytes held while paused, each way. */
  toUpstream: Buffer[];
  toClient: Buffer[];
}

export class TcpProxy {
  private server = net.createServer((client) => this.accept(client));
  private readonly pairs = new Set<Pair>();
  private state: "open" | "paused" | "cut" = "open";
  port = 0;

  constructor(
    private readonly targetHost: string,
    private readonly targetPort: number,
  ) {}

  /** A proxy for the database at `url`; `proxy.url(url)` is the same database through it. */
  static forUrl(url: string): TcpProxy {
    const parsed = new URL(url);
    return new TcpProxy(parsed.hostname, Number(parsed.port || 5432));
  }

  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, "127.0.0.1", resolve));
    this.port = (this.server.address() as net.AddressInfo).port;
  }

  url(databaseUrl: string): string {
    const parsed = new URL(databaseUrl);
    parsed.hostname = "127.0.0.1";
    parsed.port = String(this.port);
    return parsed.toString();
  }

  /** The database goes down: every connection is reset, and new ones are refused. */
  cut(): void {
    this.state = "cut";
    for (const pair of this.pairs) this.drop(pair);
  }

  /** The database stops answering: nothing passes either way until restore(). */
  pause(): void {
    this.state = "paused";
  }

  /** Back to normal; a paused connection delivers what it held and carries on. */
  restore(): void {
    this.state = "open";
    for (const pair of this.pairs) {
      if (!pair.upstream) this.connect(pair);
      this.flush(pair);
    }
  }

  async stop(): Promise<void> {
    for (const pair of this.pairs) this.drop(pair);
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(client: net.Socket): void {
    if (this.state === "cut") {
      client.resetAndDestroy();
      return;
    }
    const pair: Pair = { client, upstream: undefined, toUpstream: [], toClient: [] };
    this.pairs.add(pair);
    client.on("error", () => this.drop(pair));
    client.on("close", () => this.drop(pair));
    client.on("data", (chunk: Buffer) => {
      pair.toUpstream.push(chunk);
      this.flush(pair);
    });
    if (this.state === "open") this.connect(pair);
  }

  private connect(pair: Pair): void {
    const upstream = net.connect(this.targetPort, this.targetHost);
    pair.upstream = upstream;
    upstream.on("error", () => this.drop(pair));
    upstream.on("close", () => this.drop(pair));
    upstream.on("data", (chunk: Buffer) => {
      pair.toClient.push(chunk);
      this.flush(pair);
    });
    upstream.on("connect", () => this.flush(pair));
  }

  private flush(pair: Pair): void {
    if (this.state !== "open") return;
    const upstream = pair.upstream;
    if (upstream && !upstream.connecting) {
      for (const chunk of pair.toUpstream.splice(0)) upstream.write(chunk);
    }
    for (const chunk of pair.toClient.splice(0)) pair.client.write(chunk);
  }

  private drop(pair: Pair): void {
    if (!this.pairs.delete(pair)) return;
    pair.client.resetAndDestroy();
    pair.upstream?.resetAndDestroy();
  }
}
