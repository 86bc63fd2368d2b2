// SQL of outbound mail. The sending policy is read inside the caller's TenantScope; the rest serves
// the delivery job, which acts for the system on a message it was handed by id (see each function).
import type { TenantScope } from "../auth/principal.ts";
import type { Db } from "../db/database.ts";
import type { OrganizationStatus } from "../db/types.ts";
import { recordEvent } from "../events/outbox.ts";

export interface SendingPolicy {
  status: OrganizationStatus;
  /** The human who signed an agent organization up: its only recipient until it is verified. */
  humanEmail: string | null;
}

export async function sendingPolicy(db: Db, scope: TenantScope): Promise<SendingPolicy | undefined> {
  const row = await db
    .selectFrom("organizations as o")
    .leftJoin("agent_signups as s", "s.org_id", "o.id")
    .select(["o.status", "s.human_email"])
    .where("o.id", "=", scope.orgId)
    .executeTakeFirst();
  return row && { status: row.status, humanEmail: row.human_email };
}

/** What delivery needs of a sent message. */
export interface OutboundMessage {
  org_id: string;
  id: string;
  pod_id: string;
  inbox_id: string;
  thread_id: string;
  from_address: string;
  to_addresses: string[];
  cc_addresses: string[];
  bcc_addresses: string[];
  delivery_status: "QUEUED" | "DELIVERED" | "BOUNCED" | null;
  raw_mime: Buffer | null;
}

/**
 * A sent message, by the ids in its delivery job. For the delivery job only, which acts for the
 * system: those ids were written by the send that committed the message, never taken from a caller.
 */
export async function outboundMessage(
  db: Db,
  orgId: string,
  messageId: string,
): Promise<OutboundMessage | undefined> {
  return db
    .selectFrom("messages")
    .select([
      "org_id",
      "id",
      "pod_id",
      "inbox_id",
      "thread_id",
      "from_address",
      "to_addresses",
      "cc_addresses",
      "bcc_addresses",
      "delivery_status",
      "raw_mime",
    ])
    .where("org_id", "=", orgId)
    .where("id", "=", messageId)
    .where("direction", "=", "OUTBOUND")
    .executeTakeFirst();
}

export interface DkimKey {
  domainName: string;
  keySelector: string;
  privateKey: string;
}

/**
 * The DKIM key of a sending inbox's domain when its organization has it VERIFIED for the inbox's
 * pod (or for all pods). For the delivery job, with the ids of the message it delivers.
 */
export async function dkimKeyFor(
  db: Db,
  message: Pick<OutboundMessage, "org_id" | "pod_id">,
  domain: string,
): Promise<DkimKey | undefined> {
  const row = await db
    .selectFrom("domains")
    .select(["domain", "dkim_selector", "dkim_private_key"])
    .where("org_id", "=", message.org_id)
    .where("domain", "=", domain.toLowerCase())
    .where("status", "=", "VERIFIED")
    .where((eb) => eb.or([eb("pod_id", "is", null), eb("pod_id", "=", message.pod_id)]))
    .executeTakeFirst();
  return row && { domainName: row.domain, keySelector: row.dkim_selector, privateKey: row.dkim_private_key };
}

export type DeliveryOutcome = { status: "DELIVERED" } | { status: "BOUNCED"; error: string };

/**
 * Settles a queued message as delivered or bounced, with its event, in one transaction. A message
 * already settled (a job that ran twice) is left alone and gets no second event. For the delivery job.
 */
export async function settleDelivery(
  db: Db,
  message: OutboundMessage,
  outcome: DeliveryOutcome,
): Promise<boolean> {
  return db.transaction().execute(async (trx) => {
    const now = new Date();
    const updated = await trx
      .updateTable("messages")
      .set({
        delivery_status: outcome.status,
        delivery_error: outcome.status === "BOUNCED" ? outcome.error : null,
        delivered_at: outcome.status === "DELIVERED" ? now : null,
        updated_at: now,
      })
      .where("org_id", "=", message.org_id)
      .where("id", "=", message.id)
      .where("delivery_status", "=", "QUEUED")
      .returning("id")
      .executeTakeFirst();
    if (!updated) return false;
    await recordEvent(trx, {
      orgId: message.org_id,
      type: outcome.status === "DELIVERED" ? "MESSAGE_DELIVERED" : "MESSAGE_BOUNCED",
      podId: message.pod_id,
      inboxId: message.inbox_id,
      threadId: message.thread_id,
      messageId: message.id,
      payload: outcome.status === "BOUNCED" ? { error: outcome.error } : {},
    });
    return true;
  });
}
