// The inbound SMTP listener, an MX for hosted inboxes: RCPT TO is checked against the inboxes,
// the size limit is advertised and enforced, and `250` is answered only once the message committed.
// Before that, the message's SPF, DKIM, DMARC and ARC are checked (docs/authentication.md).
import { readFile } from "node:fs/promises";
import type { AddressInfo } from "node:net";
import { SMTPServer, type SMTPServerDataStream, type SMTPServerSession } from "smtp-server";
import type { Logger } from "../logger.ts";
import { type Authenticator, createAuthenticator } from "./authentication.ts";
import type { InboundAuthentication, InboundServices } from "./ingest.ts";
import { type HostedInbox, ingestForInboxes, recipientResolver } from "./ingest.ts";

export interface SmtpListenerOptions {
  /** Overrides `config.smtpPort` (where 0 means disabled); here 0 binds an ephemeral port. */
  port?: number;
  /** Overrides `config.smtpHost`. */
  host?: string;
  /** Overrides `config.smtpMaxMessageBytes`. */
  maxMessageBytes?: number;
  /** PEM key and certificate for STARTTLS; default: the files named by the configuration, if any. */
  tls?: { key: string | Buffer; cert: string | Buffer } | undefined;
  logger?: Logger;
  /** Told each reply that accepts or refuses a recipient (RCPT) or a message (end of DATA): metrics. */
  onReply?: (stage: "rcpt" | "data", code: number) => void;
  /** Overrides `config.mailAuth`: check SPF, DKIM, DMARC and ARC of every message. */
  verify?: boolean;
}

export interface SmtpListener {
  /** Binds the port; resolves once connections are accepted. */
  start(): Promise<{ host: string; port: number }>;
  /**
   * Stops accepting connections and commands, lets messages already in DATA finish (their senders
   * get their `250`), waiting at most `graceMs`, then closes every remaining connection with `421`.
   */
  stop(graceMs?: number): Promise<void>;
}

/** More recipients than this in one transaction get `452 4.5.3`; the sender sends the rest later. */
const MAX_RECIPIENTS = 100;

class SmtpReply extends Error {
  constructor(
    readonly responseCode: number,
    message: string,
  ) {
    super(message);
  }
}

const tryAgainLater = () => new SmtpReply(451, "Temporary local problem, please try again later");

/** smtp-server puts 5.1.1 (no such mailbox) after any 550: a refusal by policy is 5.7.1. */
const REFUSED_BY_POLICY = "5.7.1";

/** What the checks give when they could not run at all: TEMPERROR everywhere, not authenticated. */
function unverified(detail: string): InboundAuthentication {
  const check = { result: "TEMPERROR" as const, domain: null, detail };
  return {
    verdict: { spf: check, dkim: [], dmarc: check, arc: null, authenticated: false },
    header: Buffer.alloc(0),
    authservId: "",
  };
}

export function createSmtpListener(
  services: InboundServices,
  options: SmtpListenerOptions = {},
): SmtpListener {
  const { config } = services;
  const logger = (options.logger ?? services.logger).child({ component: "smtp" });
  const maxBytes = options.maxMessageBytes ?? config.smtpMaxMessageBytes;
  /** Messages between DATA and our reply: stop() lets them finish. */
  const inFlight = new Set<Promise<void>>();
  /** The inbox each accepted recipient (smtp-server's object for it) was found to be at RCPT time. */
  const recipientInboxes = new WeakMap<object, HostedInbox>();
  const resolveRecipient = recipientResolver(services);
  const authenticator: Authenticator | undefined =
    (options.verify ?? config.mailAuth) ? createAuthenticator(config) : undefined;
  let server: SMTPServer | undefined;

  /** The verdicts of a message, or TEMPERROR when the checks themselves failed (never a refusal). */
  async function authenticate(
    raw: Buffer,
    session: SMTPServerSession,
  ): Promise<InboundAuthentication | undefined> {
    if (!authenticator) return undefined;
    const origin = {
      clientAddress: session.remoteAddress,
      helo: session.hostNameAppearsAs || undefined,
      mailFrom: session.envelope.mailFrom ? session.envelope.mailFrom.address || null : null,
    };
    try {
      return await authenticator(raw, origin);
    } catch (error) {
      logger.warn({ err: error, session: session.id }, "authentication checks failed: stored as TEMPERROR");
      return unverified("the checks could not run");
    }
  }

  /** Sends the next reply of a session's connection with `enhanced` as its enhanced status code. */
  function nextReplyCode(session: SMTPServerSession, code: number, enhanced: string) {
    const connection = [...(server?.connections ?? [])].find((c) => c.id === session.id) as
      | { _getEnhancedStatusCode?: (code: number, context?: unknown) => string }
      | undefined;
    const original = connection?._getEnhancedStatusCode;
    if (!connection || !original) return;
    connection._getEnhancedStatusCode = function (this: unknown, sent: number, context?: unknown) {
      connection._getEnhancedStatusCode = original;
      return sent === code ? enhanced : original.call(this, sent, context);
    };
  }

  async function tlsOptions() {
    if (options.tls) return options.tls;
    if (!config.smtpTlsKeyFile || !config.smtpTlsCertFile) return undefined;
    return { key: await readFile(config.smtpTlsKeyFile), cert: await readFile(config.smtpTlsCertFile) };
  }

  function onRcptTo(
    address: { address: string },
    session: SMTPServerSession,
    answer: (error?: Error | null) => void,
  ) {
    const callback = (error?: SmtpReply | null) => {
      options.onReply?.("rcpt", error ? error.responseCode : 250);
      answer(error);
    };
    if (session.envelope.rcptTo.length >= MAX_RECIPIENTS) {
      callback(new SmtpReply(452, `Too many recipients (at most ${MAX_RECIPIENTS} per message)`));
      return;
    }
    resolveRecipient(address.address).then(
      (inbox) => {
        if (!inbox) {
          callback(new SmtpReply(550, `No such mailbox here: ${address.address}`));
          return;
        }
        // One reply at DATA answers for every recipient: an inbox that refuses unauthenticated mail
        // and one that takes it cannot share a transaction, or one's refusal would be the other's
        // loss. The sender delivers this one in a later transaction (RFC 5321 4.5.3.1.10).
        const first = session.envelope.rcptTo.flatMap(
          (recipient) => recipientInboxes.get(recipient) ?? [],
        )[0];
        if (authenticator && first && first.rejectUnauthenticated !== inbox.rejectUnauthenticated) {
          nextReplyCode(session, 452, "4.5.3");
          callback(new SmtpReply(452, `Send to ${address.address} in a separate transaction`));
          return;
        }
        recipientInboxes.set(address, inbox);
        callback(null);
      },
      (error: unknown) => {
        logger.error({ err: error, session: session.id }, "recipient lookup failed: answered 451");
        callback(tryAgainLater());
      },
    );
  }

  function onData(
    stream: SMTPServerDataStream,
    session: SMTPServerSession,
    callback: (error?: Error | null, message?: string) => void,
  ) {
    const started = Date.now();
    const chunks: Buffer[] = [];
    let bytes = 0;
    let answered = false;
    let settle: () => void = () => {};
    const done = new Promise<void>((resolve) => {
      settle = resolve;
    });
    inFlight.add(done);
    const reply = (error: Error | null, message?: string) => {
      if (answered) return;
      answered = true;
      inFlight.delete(done);
      settle();
      if (error instanceof SmtpReply) options.onReply?.("data", error.responseCode);
      else if (!error) options.onReply?.("data", 250);
      callback(error, message);
    };

    stream.on("data", (chunk: Buffer) => {
      bytes += chunk.length;
      // Over the limit the rest is only counted: the reply will be 552 whatever it holds.
      if (bytes <= maxBytes) chunks.push(chunk);
    });
    stream.on("error", (error) => {
      logger.info({ err: error, session: session.id, bytes }, "client left during DATA");
      reply(error);
    });
    stream.on("end", () => {
      if (stream.sizeExceeded || bytes > maxBytes) {
        logger.info({ session: session.id, bytes, limit: maxBytes }, "message over the size limit: 552");
        reply(new SmtpReply(552, `Message exceeds fixed maximum message size ${maxBytes}`));
        return;
      }
      const envelope = {
        mailFrom: session.envelope.mailFrom ? session.envelope.mailFrom.address || null : null,
        recipients: session.envelope.rcptTo.map((recipient) => recipient.address),
      };
      const inboxes = session.envelope.rcptTo.flatMap((recipient) => recipientInboxes.get(recipient) ?? []);
      const raw = Buffer.concat(chunks, bytes);
      authenticate(raw, session)
        .then((authentication) => {
          if (
            authentication?.verdict.dmarc.result === "FAIL" &&
            inboxes.some((i) => i.rejectUnauthenticated)
          ) {
            logger.info(
              { session: session.id, dmarc: authentication.verdict.dmarc, bytes },
              "DMARC FAIL refused by the recipient inbox: 550 5.7.1",
            );
            nextReplyCode(session, 550, REFUSED_BY_POLICY);
            reply(
              new SmtpReply(
                550,
                `Message refused: DMARC verification failed for ${authentication.verdict.dmarc.domain ?? "the From domain"}`,
              ),
            );
            return undefined;
          }
          return ingestForInboxes(services, envelope, raw, inboxes, authentication);
        })
        .then(
          (result) => {
            if (!result) return;
            logger.info(
              {
                session: session.id,
                messageId: result.messageIdHeader,
                bytes,
                inboxes: result.delivered.length,
                duplicates: result.delivered.filter((copy) => !copy.created).length,
                ms: Date.now() - started,
              },
              "message stored",
            );
            if (result.delivered.length === 0) {
              reply(new SmtpReply(550, "No such mailbox here"));
            } else {
              reply(null, "OK: message stored");
            }
          },
          (error: unknown) => {
            logger.error(
              { err: error, session: session.id, bytes },
              "storing a message failed: answered 451",
            );
            reply(tryAgainLater());
          },
        );
    });
  }

  return {
    async start() {
      const tls = await tlsOptions();
      const smtp = new SMTPServer({
        name: config.mxHost ?? config.mailDomain,
        banner: "Mailroom ESMTP",
        size: maxBytes,
        // Also refuses a message whose stream went over the limit despite a smaller declared SIZE.
        rejectOversized: true,
        // An MX: anyone may hand us mail for our inboxes; there is nothing to authenticate.
        authOptional: true,
        disabledCommands: tls ? ["AUTH"] : ["AUTH", "STARTTLS"],
        hideSTARTTLS: !tls,
        ...(tls ? { key: tls.key, cert: tls.cert } : {}),
        hideENHANCEDSTATUSCODES: false,
        disableReverseLookup: true,
        // smtp-server's own log lines name addresses at every step; ours below say what matters.
        logger: false,
        onRcptTo,
        onData,
      });
      const host = options.host ?? config.smtpHost;
      await new Promise<void>((resolve, reject) => {
        smtp.once("error", reject);
        smtp.listen(options.port ?? config.smtpPort, host, () => {
          smtp.off("error", reject);
          resolve();
        });
      });
      // A client's broken connection or failed TLS handshake must not take the process down.
      smtp.on("error", (error) => logger.debug({ err: error }, "SMTP connection error"));
      server = smtp;
      const { port } = smtp.server.address() as AddressInfo;
      logger.info({ host, port, maxMessageBytes: maxBytes, starttls: Boolean(tls) }, "SMTP listening");
      return { host, port };
    },

    async stop(graceMs = 10_000) {
      const smtp = server;
      if (!smtp) return;
      server = undefined;
      smtp.options.closeTimeout = graceMs;
      const closed = new Promise<void>((resolve) => smtp.close(() => resolve()));
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        Promise.allSettled([...inFlight]),
        new Promise<void>((resolve) => {
          timer = setTimeout(resolve, graceMs);
        }),
      ]);
      clearTimeout(timer);
      // What is left is idle or between commands: nothing was acknowledged that is not stored.
      for (const connection of smtp.connections) {
        connection.send(421, "Server shutting down");
        connection.close();
      }
      await closed;
      logger.info("SMTP stopped");
    },
  };
}
