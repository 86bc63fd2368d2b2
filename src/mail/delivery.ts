// The `deliver-message` job: hands a sent message to its recipients. Hosted inboxes (any pod, any
// organization) get it through the same ingest path as SMTP; everyone else through SMTP_RELAY_URL,
// DKIM-signed when the sending domain is verified. Then the message is DELIVERED or BOUNCED.
import type { Job } from "graphile-worker";
import { createTransport } from "nodemailer";
import type { Services } from "../context.ts";
import type { JobTask } from "../jobs/worker.ts";
import { ingestMessage } from "./ingest.ts";
import {
  type DeliveryOutcome,
  dkimKeyFor,
  type OutboundMessage,
  outboundMessage,
  settleDelivery,
} from "./outbound-repository.ts";
import { hostedInboxesByAddress } from "./recipient-repository.ts";

export const DELIVER_MESSAGE = "deliver-message";

/** Ids only: the job reads the message when it runs. */
export interface DeliverMessagePayload {
  orgId: string;
  messageId: string;
}

const MAX_RETRY_DELAY_MS = 6 * 60 * 60 * 1000;
const MAX_ERROR_LENGTH = 1000;

export function deliverMessageTask(services: Services): JobTask {
  const base = services.config.outboundRetryBaseMs;
  return {
    run: (payload, helpers) => deliverMessage(services, payload as DeliverMessagePayload, helpers.job),
    retryDelayMs:
      base === undefined ? undefined : (attempts) => Math.min(base * 2 ** (attempts - 1), MAX_RETRY_DELAY_MS),
  };
}

/** A failure the relay (or anything on the way) reported, and whether trying again may help. */
class DeliveryFailure extends Error {
  constructor(
    message: string,
    readonly permanent: boolean,
  ) {
    super(message);
  }
}

/**
 * One attempt. A temporary failure with attempts left throws, and graphile-worker retries later;
 * a permanent one, or the last attempt failing, bounces the message. Running again after a crash
 * is safe: internal copies are deduplicated by Message-ID, and a settled message is left alone.
 */
async function deliverMessage(services: Services, payload: DeliverMessagePayload, job: Job): Promise<void> {
  const { db, logger } = services;
  const message = await outboundMessage(db, payload.orgId, payload.messageId);
  // Deleted before it went out, or already settled by an earlier run: nothing to do.
  if (!message?.raw_mime || message.delivery_status !== "QUEUED") return;
  let outcome: DeliveryOutcome;
  try {
    await deliverCopies(services, message, message.raw_mime);
    outcome = { status: "DELIVERED" };
  } catch (error) {
    const failure = asFailure(error);
    if (!failure.permanent && job.attempts < job.max_attempts) throw failure;
    const reason = failure.permanent
      ? failure.message
      : `gave up after ${job.attempts} attempts: ${failure.message}`;
    outcome = { status: "BOUNCED", error: reason.slice(0, MAX_ERROR_LENGTH) };
  }
  await settleDelivery(db, message, outcome);
  logger.info(
    { orgId: message.org_id, messageId: message.id, status: outcome.status, attempts: job.attempts },
    outcome.status === "DELIVERED" ? "message delivered" : "message bounced",
  );
}

async function deliverCopies(services: Services, message: OutboundMessage, raw: Buffer): Promise<void> {
  const { db, config } = services;
  const recipients = uniqueAddresses([
    ...message.to_addresses,
    ...message.cc_addresses,
    ...message.bcc_addresses,
  ]);
  const hosted = await hostedInboxesByAddress(
    db,
    config.mailDomain,
    recipients.map((address) => address.toLowerCase()),
  );
  const hostedEmails = new Set(hosted.map((inbox) => inbox.email));
  const others = recipients.filter((address) => !hostedEmails.has(address.toLowerCase()));
  // Checked when sending, but the inbox may have been deleted since: only here could it be delivered.
  const gone = others.filter((address) => domainOf(address) === config.mailDomain);
  const external = others.filter((address) => domainOf(address) !== config.mailDomain);
  if (hosted.length > 0) {
    // A database failure here rejects: temporary, so the job retries.
    await ingestMessage(services, { mailFrom: message.from_address, recipients: [...hostedEmails] }, raw);
  }
  if (external.length > 0) await relay(services, message, raw, external);
  if (gone.length > 0) throw new DeliveryFailure(`no such inbox: ${gone.join(", ")}`, true);
}

function domainOf(address: string): string {
  return address.slice(address.lastIndexOf("@") + 1).toLowerCase();
}

async function relay(services: Services, message: OutboundMessage, raw: Buffer, recipients: string[]) {
  const { db, config } = services;
  // The relay was configured when the message was accepted; it may have been removed since.
  if (!config.smtpRelayUrl) throw new DeliveryFailure("no SMTP relay is configured (SMTP_RELAY_URL)", true);
  const dkim = await dkimKeyFor(db, message, domainOf(message.from_address));
  const transport = createTransport({
    url: config.smtpRelayUrl,
    connectionTimeout: 30_000,
    greetingTimeout: 30_000,
    socketTimeout: 120_000,
  });
  try {
    const info = await transport.sendMail({
      envelope: { from: message.from_address, to: recipients },
      raw,
      ...(dkim ? { dkim } : {}),
    });
    // The relay took the message for some recipients: it is never sent again (no duplicates for
    // them), and those it refused are reported on the bounce.
    const rejected = (info.rejected ?? []).map(String);
    if (rejected.length > 0) {
      const reasons = (info.rejectedErrors ?? []).map((error) => error.response ?? error.message);
      throw new DeliveryFailure(`the relay refused ${rejected.join(", ")}: ${reasons.join("; ")}`, true);
    }
  } finally {
    transport.close();
  }
}

/** nodemailer's error as a delivery failure: a 5xx reply (other than 503) is final, the rest may pass. */
function asFailure(error: unknown): DeliveryFailure {
  if (error instanceof DeliveryFailure) return error;
  const failure = error as { message?: string; code?: string; responseCode?: number; response?: string };
  const reason = failure.response ?? failure.message ?? String(error);
  // Our own credentials refused is for an operator to fix, not a reason to bounce the mail.
  if (failure.code === "EAUTH") return new DeliveryFailure(reason, false);
  if (typeof failure.responseCode === "number") {
    const code = failure.responseCode;
    return new DeliveryFailure(reason, code >= 500 && code < 600 && code !== 503);
  }
  // A message nodemailer itself refuses (an impossible envelope) will not get better.
  return new DeliveryFailure(reason, failure.code === "EENVELOPE");
}

function uniqueAddresses(addresses: readonly string[]): string[] {
  const seen = new Set<string>();
  return addresses.filter((address) => {
    const key = address.toLowerCase();
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}
