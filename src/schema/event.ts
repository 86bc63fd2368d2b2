// Subscriptions: the event stream (with replay from a cursor) and messageReceived, over graphql-ws
// and SSE. Each event is checked at delivery against the subscriber's scope, permissions and the
// message's labels as they are then; a subscription ends when its credential is revoked or expires.
import { encodeGlobalID } from "@pothos/plugin-relay";
import { type AuthInvalidation, concerns } from "../auth/authenticator.ts";
import type { AuthenticatedPrincipal } from "../auth/principal.ts";
import { tenantScopeOf } from "../auth/principal.ts";
import { compareIds, isRowId } from "../db/ids.ts";
import { badUserInput } from "../errors.ts";
import type { EventAnnouncement } from "../events/outbox.ts";
import {
  type Event,
  type EventFilter,
  eventMessages,
  eventsAfter,
  eventsByIds,
  latestEventId,
} from "../events/repository.ts";
import { eventReadableBy, eventVisibilityOf, readPermissionOf } from "../events/visibility.ts";
import type { MessageSummary } from "../mail/repository.ts";
import { builder, requires } from "./builder.ts";
import { type Context, scopeOf } from "./context.ts";
import { decodeId } from "./delete.ts";
import { DomainRef } from "./domain.ts";
import { EventTypeEnum } from "./event-type.ts";
import { InboxRef } from "./inbox.ts";
import { MessageRef } from "./message.ts";
import { ThreadRef } from "./thread.ts";

/** An event as delivered to one subscriber: the row and, for message events, the message it saw. */
interface DeliveredEvent {
  event: Event;
  message: MessageSummary | null;
}

const REPLAY_PAGE = 500;

const encodeCursor = (id: string) => Buffer.from(`event:${id}`).toString("base64url");
function decodeCursor(cursor: string): string {
  const text = Buffer.from(cursor, "base64url").toString("utf8");
  const id = text.startsWith("event:") ? text.slice("event:".length) : "";
  // Canonical digits of a bigint, so ids compare as text (compareIds) and fit the column.
  if (!isRowId(id)) throw badUserInput("after is not an event cursor.", "after");
  return id;
}

export const EventRef = builder.objectRef<DeliveredEvent>("Event").implement({
  description: "Something that happened. `cursor` resumes a subscription right after this event.",
  fields: (t) => ({
    id: t.id({ resolve: ({ event }) => encodeGlobalID("Event", event.id) }),
    cursor: t.string({ resolve: ({ event }) => encodeCursor(event.id) }),
    type: t.field({ type: EventTypeEnum, resolve: ({ event }) => event.type }),
    createdAt: t.field({ type: "DateTime", resolve: ({ event }) => event.created_at }),
    inbox: t.field({ type: InboxRef, nullable: true, resolve: ({ event }) => event.inbox_id }),
    thread: t.field({ type: ThreadRef, nullable: true, resolve: ({ event }) => event.thread_id }),
    message: t.field({ type: MessageRef, nullable: true, resolve: ({ message }) => message }),
    domain: t.field({ type: DomainRef, nullable: true, resolve: ({ event }) => event.domain_id }),
  }),
});

/**
 * Whether a subscriber may see this event at all (before any field is resolved): the rule every
 * reader of events follows (src/events/visibility.ts), applied to the message as it is now, which
 * must still exist for a message event to be delivered.
 */
function admits(principal: AuthenticatedPrincipal, event: Event, message: MessageSummary | null): boolean {
  if (!eventReadableBy(eventVisibilityOf(principal), event, message?.labels ?? null)) return false;
  return readPermissionOf(event.type) === "DOMAIN_READ" || message !== null;
}

function matches(event: Event, filter: EventFilter): boolean {
  return (
    (!filter.types?.length || filter.types.includes(event.type)) &&
    (!filter.podIds?.length || (event.pod_id !== null && filter.podIds.includes(event.pod_id))) &&
    (!filter.inboxIds?.length || (event.inbox_id !== null && filter.inboxIds.includes(event.inbox_id)))
  );
}

/** Events and their messages, read once per batch for the organization. */
async function withMessages(context: Context, events: Event[]): Promise<DeliveredEvent[]> {
  const orgId = scopeOf(context).orgId;
  const ids = events.map((e) => e.message_id).filter((id): id is string => id !== null);
  const messages = await eventMessages(context.services.db, orgId, ids);
  return events.map((event) => ({
    event,
    message: event.message_id ? (messages.get(event.message_id) ?? null) : null,
  }));
}

/**
 * The stream of events a subscriber may see, each mapped by `select` (null: skip it). Ending it
 * (`return()`) stops it at once, even while it waits for the next event, so a subscription its client
 * completed or disconnected releases its registration now rather than at the organization's next event.
 */
function eventStream<T>(
  context: Context,
  filter: EventFilter,
  after: string | undefined,
  select: (delivered: DeliveredEvent) => T | null,
): AsyncIterableIterator<T> {
  const controller = new AbortController();
  const events = streamEvents(context, filter, after, select, controller);
  return {
    next: () => events.next(),
    return: () => {
      controller.abort();
      return events.return();
    },
    throw: (error?: unknown) => {
      controller.abort();
      return events.throw(error);
    },
    [Symbol.asyncIterator]() {
      return this;
    },
  };
}

/**
 * Replay from `after` (if given), then live, with no gap and no duplicate. It listens before it replays
 * and skips what the replay already delivered.
 */
async function* streamEvents<T>(
  context: Context,
  filter: EventFilter,
  after: string | undefined,
  select: (delivered: DeliveredEvent) => T | null,
  controller: AbortController,
) {
  const { services } = context;
  let principal = context.principal as AuthenticatedPrincipal;
  let scope = scopeOf(context);
  const pending: EventAnnouncement[] = [];
  let wake: (() => void) | undefined;
  let resync = false;
  const notify = () => {
    wake?.();
    wake = undefined;
  };

  const unsubscribe = services.events.subscribe(
    scope.orgId,
    (announcement) => {
      pending.push(announcement);
      notify();
    },
    () => {
      resync = true;
      notify();
    },
  );
  // Revocation or a new organization ceiling: re-check this subscriber's credential. The context follows,
  // so each event is also executed (and its shared result chosen) under the credential as it is now.
  const onRevoked = (change: AuthInvalidation) => {
    if (!concerns(change, principal)) return;
    services.authenticator.refresh(principal).then(
      (fresh) => {
        if (!fresh) controller.abort();
        else {
          principal = fresh;
          scope = tenantScopeOf(fresh);
          context.principal = fresh;
          context.scope = scope;
        }
      },
      () => controller.abort(),
    );
  };
  services.authenticator.on("revoked", onRevoked);
  const expiry = principal.expiresAt
    ? setTimeout(
        () => controller.abort(),
        Math.min(Math.max(principal.expiresAt.getTime() - Date.now(), 0), 2 ** 31 - 1),
      )
    : undefined;
  // A plain flag: AbortSignal's getter is checked several times per event per subscriber, and costs
  // about 2% of the server's CPU at 10,000 deliveries/s.
  let ended = controller.signal.aborted;
  const end = () => {
    ended = true;
    notify();
  };
  controller.signal.addEventListener("abort", end);

  try {
    // Live-only subscribers start from "now", so a lost LISTEN connection can be caught up from the table.
    // Events announced while "now" was being read committed after we subscribed: they are new even
    // when their id is not above it.
    let cursor = after ?? (await latestEventId(services.db, scope));
    const announcedWhileStarting = new Set(after === undefined ? pending.map((a) => a.id) : []);
    const replay = async function* () {
      for (;;) {
        const page = await eventsAfter(
          services.db,
          eventVisibilityOf(principal),
          cursor,
          filter,
          REPLAY_PAGE,
        );
        for (const delivered of await withMessages(context, page)) {
          cursor = delivered.event.id;
          if (!admits(principal, delivered.event, delivered.message)) continue;
          const selected = select(delivered);
          if (selected !== null) yield selected;
        }
        if (page.length < REPLAY_PAGE) return;
      }
    };
    if (after !== undefined) yield* replay();

    while (!ended) {
      if (resync) {
        // Notifications were lost with the connection: the table has everything since our cursor.
        resync = false;
        pending.length = 0;
        yield* replay();
        continue;
      }
      const batch = pending
        .splice(0)
        .filter((a) => compareIds(a.id, cursor) > 0 || announcedWhileStarting.delete(a.id));
      if (batch.length === 0) {
        await new Promise<void>((resolve) => {
          wake = resolve;
          if (pending.length > 0 || resync || ended) resolve();
        });
        continue;
      }
      // Every subscriber of this node handling the same announcements shares one read, in id order, and
      // the very same objects: src/events/shared-results.ts shares executions per event object.
      const ids = batch.map((a) => a.id).sort(compareIds);
      const loaded = await services.events.shared(`${scope.orgId}:${ids.join(",")}`, async () =>
        (await withMessages(context, await eventsByIds(services.db, scope.orgId, ids))).sort((a, b) =>
          compareIds(a.event.id, b.event.id),
        ),
      );
      for (const delivered of loaded) {
        if (ended) break;
        cursor = delivered.event.id;
        if (!matches(delivered.event, filter) || !admits(principal, delivered.event, delivered.message))
          continue;
        const selected = select(delivered);
        if (selected !== null) yield selected;
      }
    }
  } finally {
    clearTimeout(expiry);
    unsubscribe();
    services.authenticator.off("revoked", onRevoked);
    controller.signal.removeEventListener("abort", end);
  }
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
      eventStream(
        context,
        {
          types: args.types ?? undefined,
          podIds: args.podIds?.map((id) => decodeId(String(id), "Pod")),
          inboxIds: args.inboxIds?.map((id) => decodeId(String(id), "Inbox")),
        },
        args.after ? decodeCursor(args.after) : undefined,
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
      eventStream(
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
