// The event stream behind every subscription: replay from a cursor, then live events as this node
// hears them, with no gap and no duplicate; each event checked at delivery against the subscriber's
// visibility (src/events/visibility.ts) by the labels the event recorded, as a page of Query.events
// and a webhook judge it, so that all three deliver the same events after one cursor; the stream
// ends when the subscriber's credential is revoked or expires (docs/events.md, "One cursor").
import { addressAllowed } from "../auth/allowed-ips.ts";
import { type Authenticator, type AuthInvalidation, concerns } from "../auth/authenticator.ts";
import type { AuthenticatedPrincipal } from "../auth/principal.ts";
import { tenantScopeOf } from "../auth/principal.ts";
import type { Db } from "../db/database.ts";
import { compareIds } from "../db/ids.ts";
import type { EventBus } from "./bus.ts";
import type { EventAnnouncement } from "./outbox.ts";
import { type DeliveredEvent, eventPage, type LoadMessages, withMessages } from "./page.ts";
import { type Event, type EventFilter, eventsByIds, latestEventId } from "./repository.ts";
import { eventReadableBy, eventVisibilityOf } from "./visibility.ts";

/** What the stream reads with: the database, this node's bus, and the authenticator for revocations. */
export interface StreamServices {
  db: Db;
  events: EventBus;
  authenticator: Authenticator;
}

/** Who subscribes: its credential now, and what to do when a refresh replaces it. */
export interface StreamSubscriber {
  principal: AuthenticatedPrincipal;
  /** The credential was refreshed (a new ceiling, a narrowed key): later events run under `fresh`. */
  onRefresh(fresh: AuthenticatedPrincipal): void;
  /** The subscriber's address: the stream ends when the key's allow-list no longer holds it. */
  clientIp?: string | undefined;
}

const REPLAY_PAGE = 500;

/**
 * Whether a subscriber may see this event at all (before any field is resolved): the rule every
 * reader of events follows (src/events/visibility.ts), by the labels the event recorded. Not by the
 * message as it is now: then whether an event is delivered would depend on when it is read, and a
 * client switching between polling, subscribing and webhooks could miss or repeat one. What the
 * event shows of its message now is decided where it is shown (shownMessage).
 */
function admits(principal: AuthenticatedPrincipal, event: Event): boolean {
  return eventReadableBy(eventVisibilityOf(principal), event, event.message_labels);
}

function matches(event: Event, filter: EventFilter): boolean {
  return (
    (!filter.types?.length || filter.types.includes(event.type)) &&
    (!filter.podIds?.length || (event.pod_id !== null && filter.podIds.includes(event.pod_id))) &&
    (!filter.inboxIds?.length || (event.inbox_id !== null && filter.inboxIds.includes(event.inbox_id)))
  );
}

/** One subscriber's stream: who, reading with what, which events, from where, mapped to what. */
export interface StreamRequest<M, T> {
  services: StreamServices;
  subscriber: StreamSubscriber;
  loadMessages: LoadMessages<M>;
  filter: EventFilter;
  /** Replay every event after this id first; undefined: live events only. */
  after: string | undefined;
  /** Maps each delivered event to what the stream yields; null skips it. */
  select: (delivered: DeliveredEvent<M>) => T | null;
}

/**
 * The stream of events a subscriber may see, each mapped by `select` (null: skip it). Ending it
 * (`return()`) stops it at once, even while it waits for the next event, so a subscription its client
 * completed or disconnected releases its registration now rather than at the organization's next event.
 */
export function eventStream<M, T>(request: StreamRequest<M, T>): AsyncIterableIterator<T> {
  const controller = new AbortController();
  const events = streamEvents(request, controller);
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
async function* streamEvents<M, T>(
  { services, subscriber, loadMessages, filter, after, select }: StreamRequest<M, T>,
  controller: AbortController,
) {
  let principal = subscriber.principal;
  let scope = tenantScopeOf(principal);
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
  // Revocation or a new organization ceiling: re-check this subscriber's credential. The subscriber
  // follows, so each event is also executed (and its shared result chosen) under the credential as
  // it is now.
  const onRevoked = (change: AuthInvalidation) => {
    if (!concerns(change, principal)) return;
    services.authenticator.refresh(principal).then(
      (fresh) => {
        if (!fresh) controller.abort();
        else if (
          subscriber.clientIp !== undefined &&
          !addressAllowed(fresh.allowedIps, subscriber.clientIp)
        ) {
          controller.abort();
        } else {
          principal = fresh;
          scope = tenantScopeOf(fresh);
          subscriber.onRefresh(fresh);
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
        // The very read a page of Query.events makes, so both deliver the same events after a cursor.
        const page = await eventPage(
          services.db,
          eventVisibilityOf(principal),
          loadMessages,
          cursor,
          filter,
          REPLAY_PAGE,
        );
        for (const delivered of page) {
          cursor = delivered.event.id;
          // The page was read under the credential of then; a refresh since may have narrowed it.
          if (!admits(principal, delivered.event)) continue;
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
      // the very same objects: src/schema/shared-results.ts shares executions per event object.
      const ids = batch.map((a) => a.id).sort(compareIds);
      const loaded = await services.events.shared(`${scope.orgId}:${ids.join(",")}`, async () =>
        (
          await withMessages(loadMessages, scope.orgId, await eventsByIds(services.db, scope.orgId, ids))
        ).sort((a, b) => compareIds(a.event.id, b.event.id)),
      );
      for (const delivered of loaded) {
        if (ended) break;
        cursor = delivered.event.id;
        if (!matches(delivered.event, filter) || !admits(principal, delivered.event)) continue;
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
