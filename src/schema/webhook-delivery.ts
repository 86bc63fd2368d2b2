import { eventVisibilityOf } from "../events/visibility.ts";
import { deliveriesByIds, listDeliveries, type WebhookDelivery } from "../webhooks/repository.ts";
import { builder, requires } from "./builder.ts";
import { isIdKey, keysetConnection } from "./connection.ts";
import { EventTypeEnum } from "./event-type.ts";
import { inIdOrder, loadableNodeRef } from "./loaders.ts";
import { WebhookRef } from "./webhook.ts";

const DeliveryStatusEnum = builder.enumType("WebhookDeliveryStatus", {
  values: { PENDING: {}, SUCCEEDED: {}, FAILED: {} } as const,
});

const WebhookDeliveryRef = loadableNodeRef<WebhookDelivery, string, string>("WebhookDelivery", {
  id: { resolve: (delivery) => delivery.id },
  // The same rows as Webhook.deliveries: in scope, and only about events the caller may read.
  load: async (ids, context) =>
    inIdOrder(
      ids,
      await deliveriesByIds(context.services.db, eventVisibilityOf(context.principal), ids),
      "WebhookDelivery",
    ),
});

WebhookDeliveryRef.implement({
  description: "One event's delivery to one webhook: every attempt uses the same webhook-id header.",
  fields: (t) => ({
    eventType: t.field({ type: EventTypeEnum, resolve: (d) => d.event_type as never }),
    status: t.field({ type: DeliveryStatusEnum, resolve: (d) => d.status }),
    attempts: t.exposeInt("attempts"),
    lastStatusCode: t.exposeInt("last_status_code", { nullable: true }),
    lastError: t.exposeString("last_error", { nullable: true }),
    nextAttemptAt: t.field({ type: "DateTime", nullable: true, resolve: (d) => d.next_attempt_at }),
    deliveredAt: t.field({ type: "DateTime", nullable: true, resolve: (d) => d.delivered_at }),
    createdAt: t.field({ type: "DateTime", resolve: (d) => d.created_at }),
  }),
});

const WebhookDeliveryConnection = builder.connectionObject(
  { type: WebhookDeliveryRef, name: "WebhookDeliveryConnection" },
  { name: "WebhookDeliveryEdge" },
);

builder.objectField(WebhookRef, "deliveries", (t) =>
  t.connection(
    {
      type: WebhookDeliveryRef,
      ...requires("WEBHOOK_READ"),
      description:
        "Delivery attempts, newest first: status codes, errors and the next retry. Only deliveries of events the " +
        "caller may read are listed.",
      resolve: (webhook, args, context) =>
        keysetConnection(
          args,
          (d: WebhookDelivery) => d.id,
          isIdKey,
          (page) =>
            listDeliveries(context.services.db, eventVisibilityOf(context.principal), webhook.id, page),
        ),
    },
    WebhookDeliveryConnection,
  ),
);
