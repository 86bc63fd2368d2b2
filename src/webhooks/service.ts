// Webhook rules: where a webhook may point, what it subscribes to and may see, who made it, and its
// one-time secret.
import { lookup } from "node:dns/promises";
import { isIP } from "node:net";
import { forbidden } from "../auth/permissions.ts";
import type { Principal, TenantScope } from "../auth/principal.ts";
import type { Config } from "../config.ts";
import type { Db } from "../db/database.ts";
import type { EventType } from "../db/types.ts";
import { badUserInput, notFound } from "../errors.ts";
import { type EventVisibility, eventVisibilityOf, readPermissionOf } from "../events/visibility.ts";
import { inboxesByIds } from "../inboxes/repository.ts";
import { isPublicAddress } from "../net/address-policy.ts";
import { podsByIds } from "../pods/repository.ts";
import type { Services } from "../services.ts";
import {
  deleteWebhook,
  insertWebhook,
  lockWebhook,
  type RecordedVisibility,
  updateWebhook,
  type Webhook,
} from "./repository.ts";
import { newWebhookSecretSalt, webhookSigningSecret } from "./secret.ts";

export const MAX_URL_LENGTH = 2048;
const MAX_FILTER_IDS = 100;
const LOOKUP_TIMEOUT_MS = 5_000;

/**
 * The URL as it will be called (normalized by the WHATWG parser, the same one fetch() uses, so what
 * is checked is what is called): absolute http(s), no credentials, and, unless
 * ALLOW_PRIVATE_WEBHOOK_URLS, a host that is and resolves only to public addresses.
 */
export async function validateWebhookUrl(
  config: Pick<Config, "allowPrivateWebhookUrls">,
  value: string,
): Promise<string> {
  const text = value.trim();
  if (text.length > MAX_URL_LENGTH) {
    throw badUserInput(`url must be at most ${MAX_URL_LENGTH} characters.`, "url");
  }
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw badUserInput("url must be an absolute https:// (or http://) URL.", "url");
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") {
    throw badUserInput("url must be an absolute https:// (or http://) URL.", "url");
  }
  if (url.username !== "" || url.password !== "") {
    throw badUserInput("url must not contain a user name or password.", "url");
  }
  if (url.hostname === "") throw badUserInput("url must name a host.", "url");
  if (url.href.length > MAX_URL_LENGTH) {
    throw badUserInput(`url must be at most ${MAX_URL_LENGTH} characters.`, "url");
  }
  if (!config.allowPrivateWebhookUrls) await assertPublicHost(url.hostname);
  return url.href;
}

const PRIVATE_HOST_MESSAGE =
  "url must point at a public address: loopback, private, link-local and other internal addresses are refused.";

async function assertPublicHost(hostname: string): Promise<void> {
  const host = (hostname.startsWith("[") ? hostname.slice(1, -1) : hostname).replace(/\.$/, "");
  if (isIP(host) !== 0) {
    if (!isPublicAddress(host)) throw badUserInput(PRIVATE_HOST_MESSAGE, "url");
    return;
  }
  // RFC 6761: these names are loopback whatever a resolver says.
  if (host === "localhost" || host.endsWith(".localhost")) throw badUserInput(PRIVATE_HOST_MESSAGE, "url");
  let addresses: { address: string }[];
  try {
    addresses = await withTimeout(lookup(host, { all: true, verbatim: true }), LOOKUP_TIMEOUT_MS);
  } catch {
    throw badUserInput(`url's host ${host} could not be resolved.`, "url");
  }
  // Every address, not just the first: a client may try any of them.
  if (addresses.length === 0 || !addresses.every(({ address }) => isPublicAddress(address))) {
    throw badUserInput(PRIVATE_HOST_MESSAGE, "url");
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error("timed out")), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

export function validateEventTypes(eventTypes: readonly EventType[]): EventType[] {
  if (eventTypes.length === 0)
    throw badUserInput("eventTypes must name at least one event type.", "eventTypes");
  return [...new Set(eventTypes)];
}

/** Delivery filters must name rows the caller can see; anything else is NOT_FOUND. Empty = no filter. */
async function filterIds(
  db: Db,
  scope: TenantScope,
  ids: readonly string[] | null | undefined,
  kind: "Pod" | "Inbox",
): Promise<string[] | null> {
  if (ids == null || ids.length === 0) return null;
  const unique = [...new Set(ids)];
  const field = kind === "Pod" ? "podIds" : "inboxIds";
  if (unique.length > MAX_FILTER_IDS)
    throw badUserInput(`${field} may name at most ${MAX_FILTER_IDS} ids.`, field);
  const found = kind === "Pod" ? await podsByIds(db, scope, unique) : await inboxesByIds(db, scope, unique);
  if (found.length !== unique.length) throw notFound(kind);
  return unique;
}

/** Who creates or changes a webhook: what it may see, and which credential it is. */
export interface WebhookCaller {
  visibility: EventVisibility;
  apiKeyId: string | null;
  userId: string | null;
}

export function webhookCallerOf(principal: Principal): WebhookCaller {
  if (principal.kind === "anonymous") throw new Error("webhookCallerOf() called for an anonymous caller");
  return {
    visibility: eventVisibilityOf(principal),
    apiKeyId: principal.kind === "apiKey" ? principal.apiKeyId : null,
    userId: principal.kind === "session" ? principal.userId : null,
  };
}

/**
 * A webhook that runs must be able to read what it subscribes to: otherwise it would either leak
 * (message content to a key that may not read messages) or silently deliver nothing.
 */
function assertMayRead(eventTypes: readonly EventType[], visibility: EventVisibility): void {
  const granted = {
    MESSAGE_READ: visibility.messageRead,
    DOMAIN_READ: visibility.domainRead,
    DRAFT_READ: visibility.draftRead,
  };
  for (const type of eventTypes) {
    const permission = readPermissionOf(type);
    if (!granted[permission]) throw forbidden(permission);
  }
}

/** The caller's visibility, recorded as is, with the caller as the webhook's creator. */
function recordedFrom(caller: WebhookCaller): RecordedVisibility {
  return {
    createdByApiKeyId: caller.apiKeyId,
    createdByUserId: caller.userId,
    messageRead: caller.visibility.messageRead,
    domainRead: caller.visibility.domainRead,
    draftRead: caller.visibility.draftRead,
    hiddenLabels: caller.visibility.hiddenLabels,
  };
}

/** What the webhook saw, cut down to what the caller sees; the caller becomes its creator. */
function narrowedTo(webhook: Webhook, caller: WebhookCaller): RecordedVisibility {
  return {
    createdByApiKeyId: caller.apiKeyId,
    createdByUserId: caller.userId,
    messageRead: webhook.message_read && caller.visibility.messageRead,
    domainRead: webhook.domain_read && caller.visibility.domainRead,
    draftRead: webhook.draft_read && caller.visibility.draftRead,
    hiddenLabels: [...new Set([...webhook.hidden_labels, ...caller.visibility.hiddenLabels])].sort(),
  };
}

export interface CreateWebhookInput {
  url: string;
  eventTypes: readonly EventType[];
  podIds?: readonly string[] | null | undefined;
  inboxIds?: readonly string[] | null | undefined;
}

/**
 * Creates a webhook owned by the caller's scope that sees what the caller sees (its visibility is
 * recorded with it); the secret is returned here once and never stored.
 */
export async function createWebhook(
  services: Pick<Services, "db" | "config">,
  caller: WebhookCaller,
  input: CreateWebhookInput,
): Promise<{ webhook: Webhook; secret: string }> {
  const { db, config } = services;
  const scope = caller.visibility;
  const eventTypes = validateEventTypes(input.eventTypes);
  assertMayRead(eventTypes, caller.visibility);
  const podIds = await filterIds(db, scope, input.podIds, "Pod");
  const inboxIds = await filterIds(db, scope, input.inboxIds, "Inbox");
  const url = await validateWebhookUrl(config, input.url);
  const secretSalt = newWebhookSecretSalt();
  // Derive first: if the server key is unusable, fail before a webhook without a secret exists.
  const secret = webhookSigningSecret(config, secretSalt);
  const webhook = await insertWebhook(db, scope, {
    url,
    eventTypes,
    podIds,
    inboxIds,
    secretSalt,
    visibility: recordedFrom(caller),
  });
  return { webhook, secret };
}

export interface UpdateWebhookInput {
  url?: string | null | undefined;
  eventTypes?: readonly EventType[] | null | undefined;
  enabled?: boolean | null | undefined;
}

/**
 * Changes a webhook the caller's scope contains, and makes the caller its creator. Turning a stopped
 * webhook back on hands it to the caller as is (it records the caller's visibility: the old creator
 * may be a revoked key); any other change narrows what it sees to what the caller sees, so nobody
 * can leave a webhook running that sees more than they do.
 */
export async function changeWebhook(
  services: Pick<Services, "db" | "config">,
  caller: WebhookCaller,
  id: string,
  input: UpdateWebhookInput,
): Promise<Webhook> {
  const { db, config } = services;
  const scope = caller.visibility;
  const eventTypes = input.eventTypes == null ? undefined : validateEventTypes(input.eventTypes);
  const url = input.url == null ? undefined : await validateWebhookUrl(config, input.url);
  const webhook = await db.transaction().execute(async (trx) => {
    const current = await lockWebhook(trx, scope, id);
    if (!current) return undefined;
    const enabled = input.enabled ?? current.enabled;
    if (enabled) assertMayRead(eventTypes ?? current.event_types, caller.visibility);
    const takeover = enabled && !current.enabled;
    return updateWebhook(trx, scope, id, {
      url,
      eventTypes,
      enabled,
      // Switched off by this caller: no reason to give. Already off: it stays off for its reason
      // (as read now, so a creator key that has expired meanwhile is written down).
      disabledReason: enabled || current.enabled ? null : current.disabled_reason,
      visibility: takeover ? recordedFrom(caller) : narrowedTo(current, caller),
    });
  });
  if (!webhook) throw notFound("Webhook");
  return webhook;
}

export async function removeWebhook(
  services: Pick<Services, "db">,
  scope: TenantScope,
  id: string,
): Promise<Webhook> {
  const { db } = services;
  const webhook = await deleteWebhook(db, scope, id);
  if (!webhook) throw notFound("Webhook");
  return webhook;
}
