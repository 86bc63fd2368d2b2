// The Event type and the subscriptions (events with replay from a cursor, messageReceived), over
// graphql-ws and SSE, each run on the event stream of src/events/stream.ts.
import { encodeGlobalID } from "@pothos/plugin-relay";
import type { AuthenticatedPrincipal } from "../auth/principal.ts";
import { tenantScopeOf } from "../auth/principal.ts";
import { decodeEventCursor, encodeEventCursor } from "../events/cursor.ts";
import type { EventFilter } from "../events/repository.ts";
import { type DeliveredEvent, eventStream } from "../events/stream.ts";
import { eventMessages, type MessageSummary } from "../mail/repository.ts";
import { builder, requires } from "./builder.ts";
import type { Context } from "./context.ts";
import { DomainRef } from "./domain.ts";
import { EventTypeEnum } from "./event-type.ts";
import { decodeId } from "./global-id.ts";
import { InboxRef } from "./inbox.ts";
import { MessageRef } from "./message.ts";
import { ThreadRef } from "./thread.ts";

export const EventRef = builder.objectRef<DeliveredEvent<MessageSummary>>("Event").implement({
  description: "Something that happened. `cursor` resumes a subscription right after this event.",
  fields: (t) => ({
    id: t.id({ resolve: ({ event }) => encodeGlobalID("Event", event.id) }),
    cursor: t.string({ resolve: ({ event }) => encodeEventCursor(event.id) }),
    type: t.field({ type: EventTypeEnum, resolve: ({ event }) => event.type }),
    createdAt: t.field({ type: "DateTime", resolve: ({ event }) => event.created_at }),
    inbox: t.field({ type: InboxRef, nullable: true, resolve: ({ event }) => event.inbox_id }),
    thread: t.field({ type: ThreadRef, nullable: true, resolve: ({ event }) => event.thread_id }),
    message: t.field({ type: MessageRef, nullable: true, resolve: ({ message }) => message }),
    domain: t.field({ type: DomainRef, nullable: true, resolve: ({ event }) => event.domain_id }),
  }),
});

/** One subscriber's stream, as the GraphQL context it runs in: refreshes replace the context's caller. */
function streamFor<T>(
  context: Context,
  filter: EventFilter,
  after: string | undefined,
  select: (delivered: DeliveredEvent<MessageSummary>) => T | null,
): AsyncIterableIterator<T> {
  const subscriber = {
    principal: context.principal as AuthenticatedPrincipal,
    onRefresh(fresh: AuthenticatedPrincipal) {
      context.principal = fresh;
      context.scope = tenantScopeOf(fresh);
    },
  };
  const loadMessages = (orgId: string, ids: readonly string[]) =>
    eventMessages(context.services.db, orgId, ids);
  return eventStream({ services: context.services, subscriber, loadMessages, filter, after, select });
}

builder.subscriptionType({});

builder.subscriptionFields((t) => ({
  events: t.field({
    type: EventRef,
    authScopes: { authenticated: true },
    description:
      "Every event the caller may see: of its scope; message events need MESSAGE_READ and a message no hidden " +
      "label hides; DOMAIN_VERIFIED needs DOMAIN_READ. `after` replays every such event since that cursor first.",
    args: {
      types: t.arg({ type: [EventTypeEnum] }),
      podIds: t.arg.idList(),
      inboxIds: t.arg.idList(),
      after: t.arg.string({ description: "A cursor from a delivered event: resume right after it." }),
    },
    subscribe: (_root, args, context) =>
      streamFor(
        context,
        {
          types: args.types ?? undefined,
          podIds: args.podIds?.map((id) => decodeId(String(id), "Pod")),
          inboxIds: args.inboxIds?.map((id) => decodeId(String(id), "Inbox")),
        },
        args.after ? decodeEventCursor(args.after) : undefined,
        (delivered) => delivered,
      ),
    resolve: (delivered) => delivered,
  }),
  messageReceived: t.field({
    type: MessageRef,
    ...requires("MESSAGE_READ"),
    nullable: false,
    description: "Each message arriving in the caller's inboxes (or in `inboxId`).",
    args: { inboxId: t.arg.id() },
    subscribe: (_root, args, context) =>
      streamFor(
        context,
        {
          types: ["MESSAGE_RECEIVED"],
          inboxIds: args.inboxId ? [decodeId(String(args.inboxId), "Inbox")] : undefined,
        },
        undefined,
        (delivered) => delivered.message,
      ),
    resolve: (message) => message,
  }),
}));
