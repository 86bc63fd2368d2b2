import { encodeGlobalID } from "@pothos/plugin-relay";
import { listWebhooks, type Webhook, webhooksByIds } from "../webhooks/repository.ts";
import { changeWebhook, createWebhook, removeWebhook, webhookCallerOf } from "../webhooks/service.ts";
import { builder, requires } from "./builder.ts";
import { connectionOf, isIdKey, keysetConnection } from "./connection.ts";
import { scopeOf } from "./context.ts";
import { DeleteInputRef, DeletePayloadRef } from "./delete.ts";
import { EventTypeEnum } from "./event-type.ts";
import { decodeId } from "./global-id.ts";
import { InboxRef } from "./inbox.ts";
import { inIdOrder, loadableNodeRef } from "./loaders.ts";
import { PodRef } from "./pod.ts";

export const WebhookRef = loadableNodeRef<Webhook, string, string>("Webhook", {
  id: { resolve: (webhook) => webhook.id },
  load: async (ids, context) =>
    inIdOrder(ids, await webhooksByIds(context.services.db, scopeOf(context), ids), "Webhook"),
});

WebhookRef.implement({
  description:
    "Where events are POSTed, signed per Standard Webhooks with the secret shown once in CreateWebhookPayload. " +
    "A webhook sees what the caller who created it (or last changed it) could see: events of its scope, message " +
    "events only with MESSAGE_READ and never about a message that carried a label hidden from that caller, " +
    "DOMAIN_VERIFIED only with DOMAIN_READ. See docs/webhooks.md.",
  fields: (t) => ({
    url: t.exposeString("url"),
    eventTypes: t.field({ type: [EventTypeEnum], resolve: (webhook) => webhook.event_types }),
    pod: t.field({
      type: PodRef,
      nullable: true,
      description: "The pod that owns this webhook (created by a pod-scoped key); null: organization-wide.",
      resolve: (webhook) => webhook.pod_id,
    }),
    inbox: t.field({
      type: InboxRef,
      nullable: true,
      description: "The inbox that owns this webhook, if an inbox-scoped caller created it.",
      resolve: (webhook) => webhook.inbox_id,
    }),
    podIds: t.idList({
      nullable: true,
      description: "Delivery filter: only events of these pods. null: no filter.",
      // Plain ids, not Pod objects: a filtered pod may have been deleted since.
      resolve: (webhook) => webhook.pod_ids?.map((id) => encodeGlobalID("Pod", id)) ?? null,
    }),
    inboxIds: t.idList({
      nullable: true,
      description: "Delivery filter: only events of these inboxes. null: no filter.",
      resolve: (webhook) => webhook.inbox_ids?.map((id) => encodeGlobalID("Inbox", id)) ?? null,
    }),
    enabled: t.exposeBoolean("enabled", {
      description:
        "Whether events are delivered. False once the API key that created it is deleted or has expired.",
    }),
    disabledReason: t.exposeString("disabled_reason", {
      nullable: true,
      description:
        "Why the webhook was switched off, when it was not by a caller: CREATOR_KEY_REVOKED (the API key that " +
        "created it was deleted or has expired), CREATOR_UNKNOWN (made before webhooks recorded their creator), " +
        "or what the endpoint answered. Turning it back on (updateWebhook enabled: true) makes the caller its creator.",
    }),
    createdAt: t.field({ type: "DateTime", resolve: (webhook) => webhook.created_at }),
    updatedAt: t.field({ type: "DateTime", resolve: (webhook) => webhook.updated_at }),
  }),
});

builder.queryField("webhooks", (t) =>
  t.connection(
    {
      type: WebhookRef,
      ...requires("WEBHOOK_READ"),
      description: "Newest first. A pod-scoped caller sees the webhooks its pod owns.",
      resolve: (_root, args, context) =>
        keysetConnection(
          args,
          (webhook: Webhook) => webhook.id,
          isIdKey,
          (page) => listWebhooks(context.services.db, scopeOf(context), page),
        ),
    },
    connectionOf(WebhookRef),
  ),
);

const CreateWebhookInput = builder.inputType("CreateWebhookInput", {
  fields: (t) => ({
    url: t.string({
      required: true,
      description:
        "Absolute https:// (or http://) URL without credentials, at most 2048 characters. Hosts that are, or resolve to, loopback, private or other internal addresses are refused unless ALLOW_PRIVATE_WEBHOOK_URLS.",
    }),
    eventTypes: t.field({ type: [EventTypeEnum], required: true }),
    podIds: t.idList({ description: "Only events of these pods. Omitted or empty: no filter." }),
    inboxIds: t.idList({ description: "Only events of these inboxes. Omitted or empty: no filter." }),
  }),
});

const CreateWebhookPayload = builder.simpleObject("CreateWebhookPayload", {
  fields: (t) => ({
    webhook: t.field({ type: WebhookRef }),
    secret: t.string({
      description: "The signing secret (whsec_…). Shown once: it is not stored and cannot be read again.",
    }),
  }),
});

const UpdateWebhookInput = builder.inputType("UpdateWebhookInput", {
  fields: (t) => ({
    id: t.id({ required: true }),
    url: t.string(),
    eventTypes: t.field({ type: [EventTypeEnum] }),
    enabled: t.boolean(),
  }),
});

const UpdateWebhookPayload = builder.simpleObject("UpdateWebhookPayload", {
  fields: (t) => ({ webhook: t.field({ type: WebhookRef }) }),
});

builder.mutationFields((t) => ({
  createWebhook: t.field({
    type: CreateWebhookPayload,
    ...requires("WEBHOOK_CREATE"),
    description:
      "A pod-scoped caller's webhook belongs to its pod and hears only that pod's events. It records what the " +
      "caller may see and delivers nothing more; asking for message events without MESSAGE_READ, or DOMAIN_VERIFIED " +
      "without DOMAIN_READ, is FORBIDDEN.",
    args: { input: t.arg({ type: CreateWebhookInput, required: true }) },
    resolve: (_root, { input }, context) =>
      createWebhook(context.services, webhookCallerOf(context.principal), {
        url: input.url,
        eventTypes: input.eventTypes,
        podIds: input.podIds?.map((id) => decodeId(String(id), "Pod")),
        inboxIds: input.inboxIds?.map((id) => decodeId(String(id), "Inbox")),
      }),
  }),
  updateWebhook: t.field({
    type: UpdateWebhookPayload,
    ...requires("WEBHOOK_UPDATE"),
    description:
      "The caller becomes the webhook's creator. Turning a disabled webhook on records what the caller may see; " +
      "any other change narrows what it sees to what the caller may see too. A webhook left on must be able to " +
      "read its event types (FORBIDDEN otherwise).",
    args: { input: t.arg({ type: UpdateWebhookInput, required: true }) },
    resolve: async (_root, { input }, context) => ({
      webhook: await changeWebhook(
        context.services,
        webhookCallerOf(context.principal),
        decodeId(String(input.id), "Webhook"),
        input,
      ),
    }),
  }),
  deleteWebhook: t.field({
    type: DeletePayloadRef,
    ...requires("WEBHOOK_DELETE"),
    args: { input: t.arg({ type: DeleteInputRef, required: true }) },
    resolve: async (_root, { input }, context) => {
      await removeWebhook(context.services, scopeOf(context), decodeId(String(input.id), "Webhook"));
      return { deletedId: input.id };
    },
  }),
}));
