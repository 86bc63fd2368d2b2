// The deliver-webhook job: a signed POST (Standard Webhooks) of one event to one webhook, retried on
// the Standard Webhooks schedule with the same webhook-id every time; 410 Gone disables the webhook.
// Each attempt first asks again whether the webhook may still send this event (its creator key still
// valid, its recorded visibility still able to read the event), and has one deadline for everything.
import { lookup } from "node:dns/promises";
import http from "node:http";
import https from "node:https";
import { isIP, type LookupFunction } from "node:net";
import { encodeGlobalID } from "@pothos/plugin-relay";
import { sql } from "kysely";
import { Webhook as StandardWebhook } from "standardwebhooks";
import type { Db } from "../db/database.ts";
import { encodeEventCursor } from "../events/cursor.ts";
import { eventReadable } from "../events/visibility.ts";
import {
  CREATOR_KEY_REVOKED,
  creatorActive,
  DELIVER_WEBHOOK,
  WEBHOOK_MAX_ATTEMPTS,
  webhookVisibility,
} from "../events/webhook-fan-out.ts";
import type { JobTask } from "../jobs/worker.ts";
import { isPublicAddress } from "../net/address-policy.ts";
import type { Services } from "../services.ts";
import { webhookSigningSecret } from "./secret.ts";

const MAX_ERROR_LENGTH = 500;
/** Response body read (and thrown away) at most: the status code is the answer. */
const MAX_RESPONSE_BYTES = 64 * 1024;

class DeliveryFailed extends Error {}

/** `MESSAGE_RECEIVED` → `message.received`, as webhook payloads spell event types (docs/webhooks.md). */
export function webhookEventType(type: string): string {
  return type.toLowerCase().replace("_", ".");
}

/** This job reads by the ids in its payload: it acts for the system, for one organization. */
async function loadDelivery(db: Db, orgId: string, deliveryId: string) {
  return db
    .selectFrom("webhook_deliveries as d")
    .innerJoin("webhooks as w", (join) =>
      join.onRef("w.org_id", "=", "d.org_id").onRef("w.id", "=", "d.webhook_id"),
    )
    .innerJoin("events as e", (join) =>
      join.onRef("e.org_id", "=", "d.org_id").onRef("e.id", "=", "d.event_id"),
    )
    .leftJoin("api_keys as k", (join) =>
      join.onRef("k.org_id", "=", "w.org_id").onRef("k.id", "=", "w.created_by_api_key_id"),
    )
    .leftJoin("messages as m", (join) =>
      join.onRef("m.org_id", "=", "e.org_id").onRef("m.id", "=", "e.message_id"),
    )
    .leftJoin("domains as dm", (join) =>
      join.onRef("dm.org_id", "=", "e.org_id").onRef("dm.id", "=", "e.domain_id"),
    )
    .select([
      "d.id as delivery_id",
      "d.status",
      "w.id as webhook_id",
      "w.url",
      "w.enabled",
      "w.secret_salt",
      "e.id as event_id",
      "e.xid as event_xid",
      "e.type",
      "e.created_at",
      "e.pod_id",
      "e.inbox_id",
      "e.thread_id",
      "e.message_id",
      "e.domain_id",
      "e.payload",
      "m.message_id_header",
      "m.from_address",
      "m.to_addresses",
      "m.subject",
      "m.preview",
      "e.message_labels",
      "dm.domain",
      creatorActive("w", "k").as("creator_active"),
      sql<boolean>`coalesce(${eventReadable("e", webhookVisibility("w"))}, false)`.as("readable"),
    ])
    .where("d.org_id", "=", orgId)
    .where("d.id", "=", deliveryId)
    .executeTakeFirst();
}

type LoadedDelivery = NonNullable<Awaited<ReturnType<typeof loadDelivery>>>;

export function webhookBody(row: LoadedDelivery): string {
  const id = (type: string, value: string | null) => (value === null ? null : encodeGlobalID(type, value));
  const data: Record<string, unknown> = {
    podId: id("Pod", row.pod_id),
    inboxId: id("Inbox", row.inbox_id),
  };
  if (row.message_id !== null) {
    Object.assign(data, {
      messageId: id("Message", row.message_id),
      threadId: id("Thread", row.thread_id),
      message: {
        messageId: row.message_id_header,
        from: row.from_address,
        to: row.to_addresses,
        subject: row.subject,
        preview: row.preview,
        // As they were at the event: what decided that this webhook may see it.
        labels: row.message_labels,
      },
    });
  }
  if (row.domain_id !== null)
    Object.assign(data, { domainId: id("Domain", row.domain_id), domain: row.domain });
  // DRAFT_PENDING_APPROVAL: the held draft's global id (docs/sending.md, "Approval before sending").
  if (typeof row.payload.draftId === "string") Object.assign(data, { draftId: row.payload.draftId });
  return JSON.stringify({
    type: webhookEventType(row.type),
    eventId: encodeGlobalID("Event", row.event_id),
    // The event's cursor, as Query.events and the events subscription give it: a receiver can resume
    // on either from here without a gap or a duplicate (docs/events.md, "One cursor").
    cursor: encodeEventCursor({ xid: row.event_xid, id: row.event_id }),
    createdAt: row.created_at.toISOString(),
    data,
  });
}

/**
 * Resolves the target now and connects to exactly the address that was checked, so a DNS answer
 * that changes between the check and the connection (rebinding) cannot reach a private address.
 */
async function pinnedLookup(hostname: string, allowPrivate: boolean): Promise<LookupFunction> {
  const host = hostname.startsWith("[") ? hostname.slice(1, -1) : hostname;
  const addresses = isIP(host) ? [{ address: host, family: isIP(host) }] : await lookup(host, { all: true });
  const allowed = allowPrivate ? addresses : addresses.filter(({ address }) => isPublicAddress(address));
  const chosen = allowed[0];
  if (!chosen || (!allowPrivate && allowed.length !== addresses.length)) {
    throw new DeliveryFailed(`refused: ${host} resolves to a private or internal address`);
  }
  return (_hostname, options, callback) => {
    if ((options as { all?: boolean }).all)
      callback(null, [{ address: chosen.address, family: chosen.family }]);
    else callback(null, chosen.address, chosen.family);
  };
}

/**
 * POSTs `body`, resolving with the status code. Nothing outlives `signal` (the attempt's deadline):
 * at the deadline the socket is destroyed, and the attempt fails unless the status line had arrived,
 * in which case that answer stands (a receiver that answers 200 and then drips its body is not sent
 * the event again). After the headers, at most MAX_RESPONSE_BYTES of body are read, so that a
 * receiver that ends its answer properly sees an orderly close.
 */
function post(
  url: URL,
  body: string,
  headers: Record<string, string>,
  lookupFn: LookupFunction,
  signal: AbortSignal,
): Promise<number> {
  return new Promise((resolve, reject) => {
    let status: number | undefined;
    const request = (url.protocol === "https:" ? https : http).request(
      url,
      {
        method: "POST",
        headers: {
          ...headers,
          "content-type": "application/json",
          "content-length": Buffer.byteLength(body),
        },
        lookup: lookupFn,
        // A connection of its own: nothing pooled outlives the attempt or skips its address check.
        agent: false,
      },
      (response) => {
        status = response.statusCode ?? 0;
        let read = 0;
        response.on("data", (chunk: Buffer) => {
          read += chunk.length;
          if (read >= MAX_RESPONSE_BYTES) settle();
        });
        response.on("end", () => settle());
        response.on("error", (error) => settle(error));
      },
    );
    const onDeadline = () => settle(signal.reason as Error);
    function settle(error?: Error) {
      signal.removeEventListener("abort", onDeadline);
      request.destroy();
      if (status !== undefined) resolve(status);
      else reject(error ?? new DeliveryFailed("the connection closed without an answer"));
    }
    if (signal.aborted) return settle(signal.reason as Error);
    signal.addEventListener("abort", onDeadline, { once: true });
    request.on("error", (error) => settle(error));
    request.end(body);
  });
}

/** `promise`, or the deadline's reason if the deadline comes first. */
function beforeDeadline<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise((resolve, reject) => {
    const onDeadline = () => reject(signal.reason);
    signal.addEventListener("abort", onDeadline, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener("abort", onDeadline));
  });
}

/** One attempt, DNS included, within `deadlineMs` all told. */
async function deliverOnce(
  url: URL,
  body: string,
  headers: Record<string, string>,
  allowPrivate: boolean,
  deadlineMs: number,
): Promise<number> {
  const deadline = new AbortController();
  const timer = setTimeout(
    () => deadline.abort(new DeliveryFailed(`timed out after ${deadlineMs / 1000} s`)),
    deadlineMs,
  );
  try {
    const lookupFn = await beforeDeadline(pinnedLookup(url.hostname, allowPrivate), deadline.signal);
    return await post(url, body, headers, lookupFn, deadline.signal);
  } finally {
    clearTimeout(timer);
  }
}

async function record(
  db: Db,
  orgId: string,
  deliveryId: string,
  outcome: {
    status: "PENDING" | "SUCCEEDED" | "FAILED";
    code: number | null;
    error: string | null;
    next: Date | null;
  },
) {
  await db
    .updateTable("webhook_deliveries")
    .set({
      attempts: sql`attempts + 1`,
      status: outcome.status,
      last_status_code: outcome.code,
      last_error: outcome.error?.slice(0, MAX_ERROR_LENGTH) ?? null,
      next_attempt_at: outcome.next,
      delivered_at: outcome.status === "SUCCEEDED" ? new Date() : null,
      updated_at: new Date(),
    })
    .where("org_id", "=", orgId)
    .where("id", "=", deliveryId)
    .execute();
}

async function disableWebhook(db: Db, orgId: string, webhookId: string, reason: string) {
  await db
    .updateTable("webhooks")
    .set({ enabled: false, disabled_reason: reason, updated_at: new Date() })
    .where("org_id", "=", orgId)
    .where("id", "=", webhookId)
    .execute();
}

/** How long a delivery waits for its event to settle before it is sent regardless (docs/webhooks.md). */
const SETTLE_WAIT_MS = 5_000;
const SETTLE_POLL_MS = 10;

/**
 * Waits until the delivery's event has settled (its transaction is older than every transaction still
 * running: no earlier event of the organization can still appear), at most SETTLE_WAIT_MS; then
 * returns the webhook's deliveries of earlier events never attempted yet, oldest first.
 */
async function earlierFirstAttempts(db: Db, orgId: string, deliveryId: string): Promise<string[]> {
  const deadline = Date.now() + SETTLE_WAIT_MS;
  for (;;) {
    const { rows } = await sql<{ settled: boolean }>`
      SELECT e.xid < pg_snapshot_xmin(pg_current_snapshot()) AS settled
      FROM webhook_deliveries d JOIN events e ON e.org_id = d.org_id AND e.id = d.event_id
      WHERE d.org_id = ${orgId} AND d.id = ${deliveryId}`.execute(db);
    if (!rows[0] || rows[0].settled || Date.now() > deadline) break;
    await new Promise((resolve) => setTimeout(resolve, SETTLE_POLL_MS));
  }
  const { rows } = await sql<{ id: string }>`
    SELECT earlier.id
    FROM webhook_deliveries d
    JOIN events e ON e.org_id = d.org_id AND e.id = d.event_id
    JOIN webhook_deliveries earlier ON earlier.org_id = d.org_id AND earlier.webhook_id = d.webhook_id
      AND earlier.status = 'PENDING' AND earlier.attempts = 0 AND earlier.id <> d.id
    JOIN events ee ON ee.org_id = earlier.org_id AND ee.id = earlier.event_id
    WHERE d.org_id = ${orgId} AND d.id = ${deliveryId} AND (ee.xid, ee.id) < (e.xid, e.id)
    ORDER BY ee.xid, ee.id`.execute(db);
  return rows.map((row) => row.id);
}

export function deliverWebhookTask(services: Services): JobTask {
  const { db, config } = services;
  const delays = config.webhookRetryDelaysMs;
  const delayBefore = (retry: number) => delays[Math.min(retry - 1, delays.length - 1)] ?? 0;

  /** One attempt at a delivery; the failure to retry on, if any. */
  async function attemptDelivery(
    orgId: string,
    deliveryId: string,
    attempt: number,
    maxAttempts: number,
  ): Promise<string | undefined> {
    const row = await loadDelivery(db, orgId, deliveryId);
    if (row?.status !== "PENDING") return;
    const refusal = !row.creator_active
      ? "webhook disabled: the API key that created it was deleted or has expired"
      : !row.enabled
        ? "webhook disabled"
        : !row.readable
          ? "not sent: the webhook may no longer read this event"
          : undefined;
    if (refusal !== undefined) {
      await db.transaction().execute(async (trx) => {
        // An expired creator has left no trace yet: write it down, as a deleted one did.
        if (!row.creator_active) await disableWebhook(trx, orgId, row.webhook_id, CREATOR_KEY_REVOKED);
        await record(trx, orgId, deliveryId, { status: "FAILED", code: null, error: refusal, next: null });
      });
      return;
    }
    const last = attempt >= Math.min(maxAttempts, WEBHOOK_MAX_ATTEMPTS);
    const body = webhookBody(row);
    // The same webhook-id on every attempt lets the receiver deduplicate.
    const webhookId = `msg_${orgId}_${deliveryId}`;
    const timestamp = new Date();
    const signature = new StandardWebhook(webhookSigningSecret(config, row.secret_salt)).sign(
      webhookId,
      timestamp,
      body,
    );
    let code: number | null = null;
    let error: string | null = null;
    try {
      code = await deliverOnce(
        new URL(row.url),
        body,
        {
          "webhook-id": webhookId,
          "webhook-timestamp": String(Math.floor(timestamp.getTime() / 1000)),
          "webhook-signature": signature,
          "user-agent": "Mailroom-Webhooks/1",
        },
        config.allowPrivateWebhookUrls,
        config.webhookTimeoutMs,
      );
    } catch (err) {
      error = (err as Error).message;
    }
    if (code !== null && code >= 200 && code < 300) {
      await record(db, orgId, deliveryId, { status: "SUCCEEDED", code, error: null, next: null });
      return;
    }
    if (code === 410) {
      // The receiver says this endpoint is gone for good: stop sending to it.
      await db.transaction().execute(async (trx) => {
        await disableWebhook(trx, orgId, row.webhook_id, "The endpoint answered 410 Gone.");
        await record(trx, orgId, deliveryId, {
          status: "FAILED",
          code,
          error: "410 Gone: webhook disabled",
          next: null,
        });
      });
      return;
    }
    const message = error ?? `HTTP ${code}`;
    if (last) {
      await record(db, orgId, deliveryId, { status: "FAILED", code, error: message, next: null });
      return;
    }
    await record(db, orgId, deliveryId, {
      status: "PENDING",
      code,
      error: message,
      next: new Date(Date.now() + delayBefore(attempt)),
    });
    return message;
  }

  return {
    retryDelayMs: (attempts) => delayBefore(attempts),
    run: async (payload, helpers) => {
      const { orgId, deliveryId } = payload as { orgId: string; deliveryId: string };
      // A webhook's jobs run one at a time, but a job can become visible before an earlier event's
      // job (their transactions commit in any order): once this event has settled, every earlier
      // event's delivery exists, and those never attempted go first, in event order. One that fails
      // here is retried by its own job (docs/webhooks.md, "Order").
      if (helpers.job.attempts === 1) {
        for (const earlier of await earlierFirstAttempts(db, orgId, deliveryId)) {
          await attemptDelivery(orgId, earlier, 1, helpers.job.max_attempts);
        }
      }
      const failure = await attemptDelivery(
        orgId,
        deliveryId,
        helpers.job.attempts,
        helpers.job.max_attempts,
      );
      if (failure !== undefined) {
        throw new DeliveryFailed(`webhook delivery ${deliveryId} failed (${failure}); retrying`);
      }
    },
  };
}

export { DELIVER_WEBHOOK };
