// Local mail (docs/mail.md, "Local mail without a relay"): with no SMTP relay, outside this
// service's production mode, mail to outside addresses is captured instead of sent: it is settled
// DELIVERED like relayed mail and written to the log, so a developer can read it there (a sign-up
// code included). Which route outside mail takes is decided here, from the configuration.
import { simpleParser } from "mailparser";
import type { Config } from "../config.ts";
import type { Logger } from "../logger.ts";

export type OutboundRoute = "relay" | "capture" | "refuse";

/** The body shown in the log is cut here; the message itself is stored whole. */
const MAX_LOGGED_TEXT = 16 * 1024;

/**
 * OUTBOUND_MODE when set; otherwise the relay when SMTP_RELAY_URL is set, refusal in production
 * (NODE_ENV=production: mail that reaches nobody must not look sent), capture everywhere else.
 */
export function outboundRoute(
  config: Pick<Config, "outboundMode" | "smtpRelayUrl" | "production">,
): OutboundRoute {
  if (config.outboundMode !== undefined) return config.outboundMode;
  if (config.smtpRelayUrl) return "relay";
  return config.production ? "refuse" : "capture";
}

/** What a start says about outside mail, once: where it goes, and what to set to change it. */
export function describeOutboundRoute(config: Pick<Config, "outboundMode" | "smtpRelayUrl" | "production">): {
  level: "info" | "warn";
  message: string;
} {
  switch (outboundRoute(config)) {
    case "relay":
      return { level: "info", message: "outbound mail to outside addresses goes to SMTP_RELAY_URL" };
    case "refuse":
      return {
        level: "warn",
        message:
          "outbound mail to outside addresses is refused (BAD_USER_INPUT): no SMTP_RELAY_URL is set; set it to send, or OUTBOUND_MODE=capture to keep such mail in the log",
      };
    case "capture":
      return {
        level: "warn",
        message:
          "local mail: outbound mail to outside addresses is captured, NOT sent: it is marked DELIVERED and written to this log (set SMTP_RELAY_URL to send it)",
      };
  }
}

/**
 * Captures one message for outside recipients: one log line with its envelope and subject, and
 * (unless NODE_ENV=production) its text, for a developer to read. Never fails: capture is delivery.
 */
export async function captureOutbound(
  config: Pick<Config, "production">,
  logger: Logger,
  envelope: { from: string; to: string[] },
  raw: Buffer,
  what: string,
): Promise<void> {
  let subject: string | undefined;
  let text: string | undefined;
  try {
    const parsed = await simpleParser(raw, { skipHtmlToText: false, skipImageLinks: true });
    subject = parsed.subject;
    text = parsed.text ?? undefined;
  } catch {
    // Unparseable mail is still captured; only its envelope is shown.
  }
  const shown = config.production ? undefined : text?.slice(0, MAX_LOGGED_TEXT);
  logger.info(
    {
      component: "local-mail",
      from: envelope.from,
      to: envelope.to,
      subject,
      bytes: raw.length,
      ...(shown === undefined ? {} : { text: shown }),
    },
    `local mail: ${what} captured, not sent (no SMTP relay)${shown === undefined ? "" : `\n${shown}`}`,
  );
}
