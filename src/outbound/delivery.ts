// Delivering a sent message, in two jobs that run in runners of their own (src/jobs/tasks.ts), so
// that mail between hosted inboxes never waits on a relay:
// - `deliver-message` stores the copies for hosted inboxes (any pod, any organization) through the
//   same ingest path as SMTP, then either settles the message or, when it has recipients elsewhere,
//   hands them to a `relay-message` job;
// - `relay-message` hands the message to SMTP_RELAY_URL (DKIM-signed when the sending domain is
//   verified), or captures it when there is no relay (src/outbound/capture.ts), and settles it.
// The message stays QUEUED until the part that runs last settles it DELIVERED (every recipient
// reached) or BOUNCED (one at least refused for good, or given up on), with one event.
import type { Job } from "graphile-worker";
import type { InboundServices } from "../inbound/ingest.ts";
import { ingestForInboxes } from "../inbound/ingest.ts";
import { addJob, type JobTask } from "../jobs/worker.ts";
import { insertSuppressions } from "../list-entries/repository.ts";
import { domainOf } from "../mail/addresses.ts";
import { hostedInboxesByAddress } from "../mail/recipient-repository.ts";
import { captureOutbound, outboundRoute } from "./capture.ts";
import { relayAttempt, relayDeadlines } from "./relay.ts";
import {
  type DeliveryOutcome,
  dkimKeyFor,
  type OutboundMessage,
  outboundMessage,
  settleDelivery,
} from "./repository.ts";

export const DELIVER_MESSAGE = "deliver-message";
export const RELAY_MESSAGE = "relay-message";

/** Ids only: the job reads the message when it runs. */
export interface DeliverMessagePayload {
  orgId: string;
  messageId: string;
}

/** What the hosted part leaves to the relay part: whom to relay to, and its own failure if any. */
interface RelayMessagePayload extends DeliverMessagePayload {
  recipients: string[];
  hostedFailure: string | null;
}

const MAX_RETRY_DELAY_MS = 6 * 60 * 60 * 1000;
const MAX_ERROR_LENGTH = 1000;

function retryDelayMs(services: InboundServices): JobTask["retryDelayMs"] {
  const base = services.config.outboundRetryBaseMs;
  return base === undefined
    ? undefined
    : (attempts) => Math.min(base * 2 ** (attempts - 1), MAX_RETRY_DELAY_MS);
}

export function deliverMessageTask(services: InboundServices): JobTask {
  return {
    run: (payload, helpers) => deliverMessage(services, payload as DeliverMessagePayload, helpers.job),
    retryDelayMs: retryDelayMs(services),
  };
}

export function relayMessageTask(services: InboundServices): JobTask {
  return {
    run: (payload, helpers) => relayMessage(services, payload as RelayMessagePayload, helpers.job),
    retryDelayMs: retryDelayMs(services),
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
 * The hosted part. A temporary failure (the database) with attempts left throws, and
 * graphile-worker retries later. Running again after a crash is safe: the hosted copies are
 * deduplicated (same Message-ID and content), the relay job is added once (its job key), and a
 * settled message is left alone.
 */
async function deliverMessage(
  services: InboundServices,
  payload: DeliverMessagePayload,
  job: Job,
): Promise<void> {
  const { db, config } = services;
  const message = await outboundMessage(db, payload.orgId, payload.messageId);
  // Deleted before it went out, or already settled by an earlier run: nothing to do.
  if (!message?.raw_mime || message.delivery_status !== "QUEUED") return;
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
  let hostedFailure: string | null = null;
  if (hosted.length > 0) {
    try {
      // The inboxes just looked up, not looked up again (an inbox deleted meanwhile fails its copy's
      // foreign keys: the job retries, and then finds it gone).
      await ingestForInboxes(
        services,
        { mailFrom: message.from_address, recipients: [...hostedEmails] },
        message.raw_mime,
        hosted,
      );
    } catch (error) {
      // The database failed (or was too slow): temporary, so the job retries while it may.
      if (job.attempts < job.max_attempts) throw error;
      hostedFailure = `gave up after ${job.attempts} attempts: ${(error as Error).message}`;
    }
  }
  if (gone.length > 0) hostedFailure = join(hostedFailure, `no such inbox: ${gone.join(", ")}`);
  if (external.length > 0) {
    const relayPayload: RelayMessagePayload = { ...payload, recipients: external, hostedFailure };
    await addJob(
      db,
      RELAY_MESSAGE,
      { ...relayPayload },
      {
        maxAttempts: config.outboundMaxAttempts,
        // Once per message, even when this job runs again while the relay job waits for a retry.
        jobKey: `${RELAY_MESSAGE}:${message.org_id}:${message.id}`,
        jobKeyMode: "unsafe_dedupe",
      },
    );
    return;
  }
  await settle(services, message, hostedFailure, job);
}

/**
 * The relay part. A temporary failure with attempts left throws, and graphile-worker retries later;
 * a permanent one, or the last attempt failing, bounces the message.
 */
async function relayMessage(
  services: InboundServices,
  payload: RelayMessagePayload,
  job: Job,
): Promise<void> {
  const message = await outboundMessage(services.db, payload.orgId, payload.messageId);
  if (!message?.raw_mime || message.delivery_status !== "QUEUED") return;
  let relayFailure: string | null = null;
  try {
    await relay(services, message, message.raw_mime, payload.recipients);
  } catch (error) {
    const failure = asFailure(error);
    if (!failure.permanent && job.attempts < job.max_attempts) throw failure;
    relayFailure = failure.permanent
      ? failure.message
      : `gave up after ${job.attempts} attempts: ${failure.message}`;
  }
  await settle(services, message, join(payload.hostedFailure, relayFailure), job);
}

async function settle(
  services: InboundServices,
  message: OutboundMessage,
  failure: string | null,
  job: Job,
): Promise<void> {
  const outcome: DeliveryOutcome =
    failure === null
      ? { status: "DELIVERED" }
      : { status: "BOUNCED", error: failure.slice(0, MAX_ERROR_LENGTH) };
  await settleDelivery(services.db, message, outcome);
  services.logger.info(
    { orgId: message.org_id, messageId: message.id, status: outcome.status, attempts: job.attempts },
    outcome.status === "DELIVERED" ? "message delivered" : "message bounced",
  );
}

function join(first: string | null, second: string | null): string | null {
  return first !== null && second !== null ? `${first}; ${second}` : (first ?? second);
}

async function relay(services: InboundServices, message: OutboundMessage, raw: Buffer, recipients: string[]) {
  const { db, config } = services;
  const route = outboundRoute(config);
  if (route === "capture") {
    await captureOutbound(
      config,
      services.logger,
      { from: message.from_address, to: recipients },
      raw,
      `message ${message.id}`,
    );
    return;
  }
  // The relay was configured when the message was accepted; it may have been removed since.
  if (route === "refuse" || !config.smtpRelayUrl)
    throw new DeliveryFailure("no SMTP relay is configured (SMTP_RELAY_URL)", true);
  const dkim = await dkimKeyFor(db, message, domainOf(message.from_address));
  let outcome: Awaited<ReturnType<typeof relayAttempt>>;
  try {
    outcome = await relayAttempt(
      config.smtpRelayUrl,
      { from: message.from_address, to: recipients },
      raw,
      dkim,
      relayDeadlines(config),
    );
  } catch (error) {
    // Every recipient refused: nodemailer throws, with the refusals of each.
    await suppress(services, message, (error as { rejectedErrors?: RecipientRefusal[] }).rejectedErrors);
    throw error;
  }
  await suppress(services, message, outcome.refusals);
  // The relay took the message for some recipients: it is never sent again (no duplicates for
  // them), and those it refused are reported on the bounce.
  if (outcome.rejected.length > 0) {
    throw new DeliveryFailure(
      `the relay refused ${outcome.rejected.join(", ")}: ${outcome.reasons.join("; ")}`,
      true,
    );
  }
}

/** nodemailer's account of one refused recipient. */
interface RecipientRefusal {
  recipient?: string;
  responseCode?: number;
  response?: string;
  message?: string;
}

/**
 * Suppressions (docs/sending.md): each recipient the relay refused for good (a 5xx other than 503
 * to its RCPT TO) goes on the organization's SEND BLOCK list, read-only, with the relay's answer as
 * the reason, so that the next send to it is refused before anything is stored.
 */
async function suppress(
  services: InboundServices,
  message: OutboundMessage,
  refusals: readonly RecipientRefusal[] | undefined,
): Promise<void> {
  const permanent = (refusals ?? []).flatMap((refusal) => {
    const code = refusal.responseCode;
    if (!refusal.recipient || code === undefined || code < 500 || code > 599 || code === 503) return [];
    return [
      { address: refusal.recipient, reason: refusal.response ?? refusal.message ?? `refused with ${code}` },
    ];
  });
  if (permanent.length === 0) return;
  await insertSuppressions(services.db, message.org_id, permanent);
  services.logger.info(
    { orgId: message.org_id, messageId: message.id, suppressed: permanent.length },
    "permanently refused recipients suppressed",
  );
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
