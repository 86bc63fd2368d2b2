// SMTP clients for tests: nodemailer as a sending MTA would use it, and a raw dialogue for the
// replies nodemailer hides (EHLO capabilities, the code at RCPT or MAIL time, STARTTLS by hand).
import net from "node:net";
import tls from "node:tls";
import { createTransport } from "nodemailer";
import MailComposer from "nodemailer/lib/mail-composer";
import type Mail from "nodemailer/lib/mailer";

/** A plain SMTP client on 127.0.0.1 that upgrades with STARTTLS when offered, trusting any certificate. */
export function smtpTransport(port: number, extra: Record<string, unknown> = {}) {
  return createTransport({
    host: "127.0.0.1",
    port,
    secure: false,
    tls: { rejectUnauthorized: false },
    ...extra,
  });
}

/** The RFC 5322 bytes nodemailer would send for these options. */
export async function compose(options: Mail.Options): Promise<Buffer> {
  return new MailComposer(options).compile().build();
}

/** Sends exact bytes: the envelope is given, the message is not touched. */
export async function sendRaw(port: number, envelope: { from: string; to: string[] }, raw: Buffer) {
  const transport = smtpTransport(port);
  try {
    return await transport.sendMail({ envelope, raw });
  } finally {
    transport.close();
  }
}

export interface SmtpReply {
  code: number;
  lines: string[];
  text: string;
}

/** One SMTP session driven line by line. */
export class SmtpDialogue {
  private buffer = "";
  private replies: SmtpReply[] = [];
  private waiting: ((reply: SmtpReply) => void) | undefined;
  private socket: net.Socket | tls.TLSSocket;
  closed = false;

  private constructor(socket: net.Socket) {
    this.socket = socket;
    this.listen(socket);
  }

  static async open(port: number): Promise<{ session: SmtpDialogue; greeting: SmtpReply }> {
    const socket = net.connect(port, "127.0.0.1");
    await new Promise<void>((resolve, reject) => {
      socket.once("connect", resolve);
      socket.once("error", reject);
    });
    const session = new SmtpDialogue(socket);
    return { session, greeting: await session.reply() };
  }

  private listen(socket: net.Socket | tls.TLSSocket) {
    socket.setEncoding("utf8");
    socket.on("data", (chunk: string) => {
      this.buffer += chunk;
      this.drain();
    });
    socket.on("close", () => {
      this.closed = true;
    });
    socket.on("error", () => {});
  }

  private drain() {
    for (;;) {
      const lines = this.buffer.split("\r\n");
      const last = lines.findIndex((line) => /^\d{3}( |$)/.test(line));
      if (last === -1 || last === lines.length - 1) return;
      const replyLines = lines.slice(0, last + 1);
      this.buffer = lines.slice(last + 1).join("\r\n");
      const reply = {
        code: Number(replyLines[last]?.slice(0, 3)),
        lines: replyLines.map((line) => line.slice(4)),
        text: replyLines.join("\n"),
      };
      const waiter = this.waiting;
      this.waiting = undefined;
      if (waiter) waiter(reply);
      else this.replies.push(reply);
    }
  }

  reply(timeoutMs = 20_000): Promise<SmtpReply> {
    const queued = this.replies.shift();
    if (queued) return Promise.resolve(queued);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no SMTP reply within ${timeoutMs} ms`)), timeoutMs);
      this.waiting = (reply) => {
        clearTimeout(timer);
        resolve(reply);
      };
    });
  }

  write(data: string | Buffer) {
    this.socket.write(data);
  }

  async command(line: string): Promise<SmtpReply> {
    this.socket.write(`${line}\r\n`);
    return this.reply();
  }

  /** DATA, then the message (dot-stuffed here), then the final dot: the reply after the dot. */
  async data(message: Buffer | string): Promise<SmtpReply> {
    const go = await this.command("DATA");
    if (go.code !== 354) return go;
    const text = Buffer.isBuffer(message) ? message.toString("latin1") : message;
    const stuffed = text.replace(/(^|\r\n)\./g, "$1..");
    this.socket.write(Buffer.from(stuffed.endsWith("\r\n") ? stuffed : `${stuffed}\r\n`, "latin1"));
    this.socket.write(".\r\n");
    return this.reply();
  }

  /** STARTTLS and the handshake; resolves with the server's certificate. */
  async startTls(): Promise<tls.PeerCertificate> {
    const ready = await this.command("STARTTLS");
    if (ready.code !== 220) throw new Error(`STARTTLS refused: ${ready.text}`);
    const plain = this.socket as net.Socket;
    plain.removeAllListeners("data");
    const secure = tls.connect({ socket: plain, rejectUnauthorized: false });
    await new Promise<void>((resolve, reject) => {
      secure.once("secureConnect", resolve);
      secure.once("error", reject);
    });
    this.socket = secure;
    this.listen(secure);
    return secure.getPeerCertificate();
  }

  close() {
    this.socket.destroy();
  }
}
