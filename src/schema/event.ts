// The Event type, Query.events (a page of events after a cursor) and the subscriptions (events with
// replay from a cursor, messageReceived), over graphql-ws and SSE, each run on the event stream of
// src/events/stream.ts. One cursor serves them all and webhooks too (docs/events.md, "One cursor").
import { GraphQLError } from "graphql";
import type { AuthenticatedPrincipal } from "../auth/principal.ts";
import { tenantScopeOf } from "../auth/principal.ts";
import { notFound } from "../errors.ts";
import {
  decodeEventCursor,
  type EventPosition,
  encodeEventCursor,
  isEventPosition,
  positionOf,
  START,
} from "../events/cursor.ts";
import { type DeliveredEvent, eventPage, withMessages } from "../events/page.ts";
import { type EventFilter, readableEventsByIds } from "../events/repository.ts";
import { eventStream } from "../events/stream.ts";
import { type EventVisibility, eventVisibilityOf, shownMessage } from "../events/visibility.ts";
import { eventMessages, type MessageSummary } from "../mail/repository.ts";
import { builder, requires } from "./builder.ts";
import { connectionOf, keysetConnection } from "./connection.ts";
import { type Context, scopeOf } from "./context.ts";
import { DomainRef } from "./domain.ts";
import { DraftRef } from "./draft.ts";
import { EventTypeEnum } from "./event-type.ts";
import { decodeId, parseGlobalId } from "./global-id.ts";
import { InboxRef } from "./inbox.ts";
import { loadableNodeRef } from "./loaders.ts";
import { MessageRef } from "./message.ts";
import { ThreadRef } from "./thread.ts";

type Loadable<T> = { getDataloader(context: Context): { load(id: string): Promise<T> } };

/**
 * What an event names, loaded in the request's batch, or null when it is gone or hidden from the caller:
 * an event outlives the rows it mentions, and is delivered by the labels it recorded, so the inbox,
 * thread or domain it names may no longer be there to show. Any other failure stays an error.
 */
function namedOrNull<T>(ref: Loadable<T>, id: string | null, context: Context): Promise<T | null> | null {
  if (id === null) return null;
  return ref
    .getDataloader(context)
    .load(id)
    .catch((error: unknown) => {
      if (error instanceof GraphQLError && error.extensions.code === "NOT_FOUND") return null;
      throw error;
    });
}

/** The messages of a batch of events, as they are now, in one statement. */
const messagesFor = (context: Context) => (orgId: string, ids: readonly string[]) =>
  eventMessages(context.services.db, orgId, ids);

export const EventRef = loadableNodeRef<DeliveredEvent<MessageSummary>, string, string>("Event", {
  id: {
    description: "Global id of the event: a webhook payload's `eventId`.",
    resolve: ({ event }) => event.id,
  },
  // The same rule as Query.events and the subscription: an event the caller could not page to is NOT_FOUND.
  load: async (ids, context) => {
    const visibility = eventVisibilityOf(context.principal);
    const events = await readableEventsByIds(context.services.db, visibility, ids);
    const delivered = await withMessages(messagesFor(context), visibility.orgId, events);
    const byId = new Map(delivered.map((d) => [String(d.event.id), d]));
    return ids.map((id) => byId.get(String(id)) ?? notFound("Event"));
  },
});

EventRef.implement({
  description:
    "Something that happened. `cursor` resumes right after this event on any channel: a page of `events`, " +
    "the `events` subscription, or (as the `cursor` of its payload) a webhook.",
  fields: (t) => ({
    cursor: t.string({
      description:
        "Resume right after this event: `after` of Query.events or Subscription.events. The same value a " +
        "webhook payload carries as `cursor`.",
      resolve: ({ event }) => encodeEventCursor(event),
    }),
    type: t.field({ type: EventTypeEnum, description: "What happened.", resolve: ({ event }) => event.type }),
    createdAt: t.field({
      type: "DateTime",
      description: "When it happened.",
      resolve: ({ event }) => event.created_at,
    }),
    inbox: t.field({
      type: InboxRef,
      nullable: true,
      description: "The inbox it happened in; null once the inbox is deleted.",
      resolve: ({ event }, _args, context) => namedOrNull(InboxRef, event.inbox_id, context),
    }),
    thread: t.field({
      type: ThreadRef,
      nullable: true,
      description: "The message's thread, while the caller may see it; null otherwise.",
      resolve: ({ event }, _args, context) => namedOrNull(ThreadRef, event.thread_id, context),
    }),
    message: t.field({
      type: MessageRef,
      nullable: true,
      description:
        "The message, as it is now. Null when it was deleted or now carries a label hidden from the caller: " +
        "the event is still delivered, since whether an event is seen is decided by the labels of when it happened.",
      resolve: ({ message }, _args, context) => shownMessage(message, scopeOf(context).hiddenLabels),
    }),
    draft: t.field({
      type: DraftRef,
      nullable: true,
      description:
        "The draft of a DRAFT_PENDING_APPROVAL event, while it waits (or until it is deleted or sent); null otherwise.",
      resolve: ({ event }, _args, context) => {
        const draftId = (event.payload as { draftId?: unknown }).draftId;
        const parsed = typeof draftId === "string" ? parseGlobalId(draftId) : undefined;
        return namedOrNull(DraftRef, parsed?.typename === "Draft" ? parsed.id : null, context);
      },
    }),
    domain: t.field({
      type: DomainRef,
      nullable: true,
      description: "The domain of a DOMAIN_VERIFIED event; null once the domain is deleted.",
      resolve: ({ event }, _args, context) => namedOrNull(DomainRef, event.domain_id, context),
    }),
  }),
});

/** The filter arguments Query.events and Subscription.events share, decoded. */
function filterOf(args: {
  types?: NonNullable<EventFilter["types"]> | null;
  podIds?: readonly (string | number)[] | null;
  inboxIds?: readonly (string | number)[] | null;
}): EventFilter {
  return {
    types: args.types ?? undefined,
    podIds: args.podIds?.map((id) => decodeId(String(id), "Pod")),
    inboxIds: args.inboxIds?.map((id) => decodeId(String(id), "Inbox")),
  };
}

/** One subscriber's stream, as the GraphQL context it runs in: refreshes replace the context's caller. */
function streamFor<T>(
  context: Context,
  filter: EventFilter,
  after: EventPosition | undefined,
  select: (delivered: DeliveredEvent<MessageSummary>, visibility: EventVisibility) => T | null,
): AsyncIterableIterator<T> {
  const subscriber = {
    principal: context.principal as AuthenticatedPrincipal,
    clientIp: context.clientIp,
    onRefresh(fresh: AuthenticatedPrincipal) {
      context.principal = fresh;
      context.scope = tenantScopeOf(fresh);
    },
  };
  return eventStream({
    services: context.services,
    subscriber,
    loadMessages: messagesFor(context),
    filter,
    after,
    select,
  });
}

const TYPES_DESCRIPTION = "Only events of these types.";
const POD_IDS_DESCRIPTION = "Only events in these pods.";
const INBOX_IDS_DESCRIPTION = "Only events in these inboxes.";

const EventConnectionRef = connectionOf(EventRef, {
  connection: "A page of events, oldest first.",
  edge: "An event and its cursor (the event's `cursor`).",
});

builder.queryFields((t) => ({
  events: t.field({
    type: EventConnectionRef,
    authScopes: { authenticated: true },
    description:
      "The events the caller may see, oldest first, exactly as the `events` subscription delivers them (the same " +
      "events, cursors and visibility): of its scope; message events need MESSAGE_READ and a message that no " +
      "label hidden from the caller hid when the event happened; DOMAIN_VERIFIED needs DOMAIN_READ. Each edge's " +
      "cursor is its event's `cursor`; poll with `after` set to the last one handled (an empty page: keep it).",
    args: {
      types: t.arg({ type: [EventTypeEnum], description: TYPES_DESCRIPTION }),
      podIds: t.arg.idList({ description: POD_IDS_DESCRIPTION }),
      inboxIds: t.arg.idList({ description: INBOX_IDS_DESCRIPTION }),
      first: t.arg.int({ description: "How many events at most: 50 unless given, at most 200." }),
      after: t.arg.string({
        description:
          "An event's cursor (from a page, a subscription or a webhook payload): the events after it. " +
          "Without it, from the oldest event the caller may see.",
      }),
    },
    resolve: (_root, args, context) => {
      const visibility = eventVisibilityOf(context.principal);
      const filter = filterOf(args);
      return keysetConnection(
        { first: args.first, after: args.after },
        (delivered: DeliveredEvent<MessageSummary>) => positionOf(delivered.event),
        isEventPosition,
        (page) =>
          eventPage(
            context.services.db,
            visibility,
            messagesFor(context),
            page.after ?? START,
            filter,
            page.limit,
          ),
        // Event cursors, not the list's own: an edge's cursor is its event's `cursor`.
        { cursor: { encode: encodeEventCursor, decode: decodeEventCursor } },
      );
    },
  }),
}));

builder.subscriptionType({});

builder.subscriptionFields((t) => ({
  events: t.field({
    type: EventRef,
    authScopes: { authenticated: true },
    description:
      "Every event the caller may see, as Query.events lists them: of its scope; message events need MESSAGE_READ " +
      "and a message that no label hidden from the caller hid when the event happened; DOMAIN_VERIFIED needs " +
      "DOMAIN_READ. `after` replays every such event since that cursor first.",
    args: {
      types: t.arg({ type: [EventTypeEnum], description: TYPES_DESCRIPTION }),
      podIds: t.arg.idList({ description: POD_IDS_DESCRIPTION }),
      inboxIds: t.arg.idList({ description: INBOX_IDS_DESCRIPTION }),
      after: t.arg.string({
        description:
          "An event's cursor (from a subscription, a page of Query.events or a webhook payload): resume right after it.",
      }),
    },
    subscribe: (_root, args, context) =>
      streamFor(
        context,
        filterOf(args),
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
        // A stream of messages, not of events: a message deleted or hidden before delivery is skipped.
        (delivered, visibility) => shownMessage(delivered.message, visibility.hiddenLabels),
      ),
    resolve: (message) => message,
  }),
}));
