// One dedicated LISTEN connection per node (revocations). NOTIFY is sent inside the transaction that
// writes the data, so a notification arrives if and only if that data committed (docs/architecture.md,
// "Many nodes"). Events are not announced this way (docs/events.md, "Order without a lock").
import { EventEmitter } from "node:events";
import pg from "pg";
import type { Logger } from "../logger.ts";

type Handler = (payload: string) => void;

export class PgListener extends EventEmitter<{ reconnected: []; error: [Error] }> {
  private client: pg.Client | undefined;
  private readonly handlers = new Map<string, Set<Handler>>();
  private stopped = false;
  private retryTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly connectionString: string,
    private readonly logger?: Logger,
    /** A reconnection attempt to a server that does not answer gives up after this and tries again. */
    private readonly connectTimeoutMs = 0,
  ) {
    super();
  }

  async start(): Promise<void> {
    await this.connect();
  }

  /** Handlers run synchronously in arrival order; a throwing handler does not stop the others. */
  async listen(channel: string, handler: Handler): Promise<void> {
    let set = this.handlers.get(channel);
    if (!set) {
      set = new Set();
      this.handlers.set(channel, set);
      await this.client?.query(`LISTEN ${pg.escapeIdentifier(channel)}`);
    }
    set.add(handler);
  }

  private async connect(): Promise<void> {
    const client = new pg.Client({
      connectionString: this.connectionString,
      application_name: "mailroom-listen",
      connectionTimeoutMillis: this.connectTimeoutMs,
      // This connection only ever reads: without keepalives a host that vanished goes unnoticed.
      keepAlive: true,
      keepAliveInitialDelayMillis: 10_000,
    });
    client.on("notification", (message) => {
      for (const handler of this.handlers.get(message.channel) ?? []) {
        try {
          handler(message.payload ?? "");
        } catch (error) {
          this.logger?.error({ err: error, channel: message.channel }, "notification handler failed");
        }
      }
    });
    client.on("error", (error) => this.lost(client, error));
    client.on("end", () => this.lost(client, new Error("LISTEN connection ended")));
    await client.connect();
    for (const channel of this.handlers.keys()) await client.query(`LISTEN ${pg.escapeIdentifier(channel)}`);
    this.client = client;
  }

  private lost(client: pg.Client, error: Error): void {
    if (this.client !== client || this.stopped) return;
    this.client = undefined;
    this.logger?.warn({ err: error }, "LISTEN connection lost; reconnecting");
    client.end().catch(() => {});
    this.scheduleReconnect(100);
  }

  private scheduleReconnect(delayMs: number): void {
    if (this.stopped) return;
    this.retryTimer = setTimeout(() => {
      this.connect().then(
        // Anything published while we were away is unknown to us: listeners must resynchronise.
        () => this.emit("reconnected"),
        () => this.scheduleReconnect(Math.min(delayMs * 2, 5_000)),
      );
    }, delayMs);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    const client = this.client;
    this.client = undefined;
    await client?.end().catch(() => {});
  }
}
