// An SMTP relay for tests: what SMTP_RELAY_URL points at. It keeps what it receives, and answers by
// recipient domain: reject.test is refused at RCPT (550), down.test is deferred at DATA (451) forever,
// and an address in deferUntil is deferred that many times before it is taken.
import { SMTPServer } from "smtp-server";

export interface Received {
  mailFrom: string;
  rcptTo: string[];
  raw: Buffer;
}

export class RelaySink {
  readonly received: Received[] = [];
  /** Replies to DATA refused so far, per recipient address. */
  readonly deferrals = new Map<string, number>();
  /** Recipient address → how many DATA attempts to defer (451) before accepting. */
  readonly deferUntil = new Map<string, number>();
  private server = new SMTPServer({
    authOptional: true,
    // Plain SMTP: the relay URL is smtp:// and the test trusts no certificate.
    disabledCommands: ["STARTTLS", "AUTH"],
    logger: false,
    onRcptTo: (address, _session, callback) => {
      const domain = address.address.split("@")[1] ?? "";
      if (domain === "reject.test") {
        const error = Object.assign(new Error("5.1.1 No such user here"), { responseCode: 550 });
        return callback(error);
      }
      callback();
    },
    onData: (stream, session, callback) => {
      const chunks: Buffer[] = [];
      stream.on("data", (chunk: Buffer) => chunks.push(chunk));
      stream.on("end", () => {
        const rcptTo = session.envelope.rcptTo.map((r) => r.address);
        for (const address of rcptTo) {
          const domain = address.split("@")[1] ?? "";
          const seen = this.deferrals.get(address) ?? 0;
          const limit =
            domain === "down.test" ? Number.POSITIVE_INFINITY : (this.deferUntil.get(address) ?? 0);
          if (seen < limit) {
            this.deferrals.set(address, seen + 1);
            const error = Object.assign(new Error("4.3.0 Try again later"), { responseCode: 451 });
            return callback(error);
          }
        }
        const mailFrom = session.envelope.mailFrom ? session.envelope.mailFrom.address : "";
        this.received.push({ mailFrom, rcptTo, raw: Buffer.concat(chunks) });
        callback();
      });
    },
  });
  port = 0;

  async start() {
    await new Promise<void>((resolve) => this.server.listen(0, "127.0.0.1", resolve));
    this.port = (this.server.server.address() as { port: number }).port;
  }

  stop() {
    return new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /** The message the relay received for `address`. */
  async waitFor(address: string, timeoutMs = 20_000): Promise<Received> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.received.find((message) =>
        message.rcptTo.some((rcpt) => rcpt.toLowerCase() === address.toLowerCase()),
      );
      if (found) return found;
      if (Date.now() > deadline) throw new Error(`the relay received nothing for ${address}`);
      await sleep(50);
    }
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
