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
import type { EventBus } from "./bus.ts";
import { type EventPosition, positionOf } from "./cursor.ts";
import { type DeliveredEvent, eventPage, type LoadMessages, withMessages } from "./page.ts";
import { type Event, type EventFilter, latestPosition, settledEventsAfter } from "./repository.ts";
import { type EventVisibility, eventReadableBy, eventVisibilityOf } from "./visibility.ts";

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

/** Events per read of a replay or of the live stream (src/schema/fan-out.ts reads with it too). */
export const REPLAY_PAGE = 500;

/**
 * Whether a subscriber may see this event at all (before any field is resolved): the rule every
 * reader of events follows (src/events/visibility.ts), by the labels the event recorded. Not by the
 * message as it is now: then whether an event is delivered would depend on when it is read, and a
 * client switching between polling, subscribing and webhooks could miss or repeat one. What the
 * event shows of its message now is decided where it is shown (shownMessage).
 */
export function admits(principal: AuthenticatedPrincipal, event: Event): boolean {
  return eventReadableBy(eventVisibilityOf(principal), event, event.message_labels);
}

export function matches(event: Event, filter: EventFilter): boolean {
  return (
    (!filter.types?.length || filter.types.includes(event.type)) &&
    (!filter.podIds?.length || (event.pod_id !== null && filter.podIds.includes(event.pod_id))) &&
    (!filter.inboxIds?.length || (event.inbox_id !== null && filter.inboxIds.includes(event.inbox_id)))
  );
}

/**
 * Follows a subscriber's credential: each revocation that may concern it re-checks it, and a refresh
 * replaces it (`subscriber.onRefresh`, then `onFresh`); `onEnd` when it is revoked, may no longer be
 * used from the subscriber's address, or expires. Returns what stops following it.
 */
export function followCredential(
  services: StreamServices,
  subscriber: StreamSubscriber,
  current: () => AuthenticatedPrincipal,
  onFresh: (fresh: AuthenticatedPrincipal) => void,
  onEnd: () => void,
): () => void {
  const onRevoked = (change: AuthInvalidation) => {
    const principal = current();
    if (!concerns(change, principal)) return;
    services.authenticator.refresh(principal).then(
      (fresh) => {
        if (!fresh) onEnd();
        else if (
          subscriber.clientIp !== undefined &&
          !addressAllowed(fresh.allowedIps, subscriber.clientIp)
        ) {
          onEnd();
        } else {
          onFresh(fresh);
          subscriber.onRefresh(fresh);
        }
      },
      () => onEnd(),
    );
  };
  services.authenticator.on("revoked", onRevoked);
  const expiresAt = current().expiresAt;
  const expiry = expiresAt
    ? setTimeout(onEnd, Math.min(Math.max(expiresAt.getTime() - Date.now(), 0), 2 ** 31 - 1))
    : undefined;
  return () => {
    clearTimeout(expiry);
    services.authenticator.off("revoked", onRevoked);
  };
}

/** One subscriber's stream: who, reading with what, which events, from where, mapped to what. */
export interface StreamRequest<M, T> {
  services: StreamServices;
  subscriber: StreamSubscriber;
  loadMessages: LoadMessages<M>;
  filter: EventFilter;
  /** Replay every event after this position first; undefined: live events only. */
  after: EventPosition | undefined;
  /**
   * Maps each delivered event to what the stream yields, as `visibility` sees it; null skips it. A pure
   * function of the event and the visibility, so that one call serves every subscriber sharing both.
   */
  select: (delivered: DeliveredEvent<M>, visibility: EventVisibility) => T | null;
}

/**
 * Where a stream keeps the request it was made from: the WebSocket fan-out (src/schema/fan-out.ts)
 * serves the subscriber from it instead of iterating the stream.
 */
export const STREAM_REQUEST = Symbol("stream request");

/** The request behind a stream made by eventStream, if `value` is one. */
export function streamRequestOf(value: unknown): StreamRequest<unknown, unknown> | undefined {
  return typeof value === "object" && value !== null
    ? ((value as { [STREAM_REQUEST]?: StreamRequest<unknown, unknown> })[STREAM_REQUEST] ?? undefined)
    : undefined;
}

/**
 * The stream of events a subscriber may see, each mapped by `select` (null: skip it). Ending it
 * (`return()`) stops it at once, even while it waits for the next event, so a subscription its client
 * completed or disconnected releases its registration now rather than at the organization's next event.
 */
export function eventStream<M, T>(request: StreamRequest<M, T>): AsyncIterableIterator<T> {
  const controller = new AbortController();
  const events = streamEvents(request, controller);
  const stream: AsyncIterableIterator<T> & { [STREAM_REQUEST]: StreamRequest<M, T> } = {
    [STREAM_REQUEST]: request,
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
  return stream;
}

/**
 * Replay from `after` (if given), then live, with no gap and no duplicate: the stream only ever reads
 * the settled events after its cursor, in order (src/events/repository.ts), and reads again whenever
 * the bus says its organization's settled events moved.
 */
async function* streamEvents<M, T>(
  { services, subscriber, loadMessages, filter, after, select }: StreamRequest<M, T>,
  controller: AbortController,
) {
  let principal = subscriber.principal;
  let scope = tenantScopeOf(principal);
  let wake: (() => void) | undefined;
  const notify = () => {
    wake?.();
    wake = undefined;
  };

  const unsubscribe = services.events.subscribe(scope.orgId, notify);
  // Revocation or a new organization ceiling: the subscriber follows its credential, so each event is
  // also executed (and its shared result chosen) under the credential as it is now.
  const unfollow = followCredential(
    services,
    subscriber,
    () => principal,
    (fresh) => {
      principal = fresh;
      scope = tenantScopeOf(fresh);
    },
    () => controller.abort(),
  );
  // A plain flag: AbortSignal's getter is checked several times per event per subscriber, and costs
  // about 2% of the server's CPU at 10,000 deliveries/s.
  let ended = controller.signal.aborted;
  const end = () => {
    ended = true;
    notify();
  };
  controller.signal.addEventListener("abort", end);

  try {
    // Live-only subscribers start from the newest settled event: every event after it settles later.
    let cursor = after ?? (await latestPosition(services.db, scope));
    if (after !== undefined) {
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
          cursor = positionOf(delivered.event);
          // The page was read under the credential of then; a refresh since may have narrowed it.
          if (!admits(principal, delivered.event)) continue;
          const selected = select(delivered, eventVisibilityOf(principal));
          if (selected !== null) yield selected;
        }
        if (page.length < REPLAY_PAGE) break;
      }
    }

    let seen = -1;
    while (!ended) {
      const generation = services.events.generation(scope.orgId);
      if (generation === seen) {
        await new Promise<void>((resolve) => {
          wake = resolve;
          if (ended || services.events.generation(scope.orgId) !== seen) resolve();
        });
        continue;
      }
      seen = generation;
      // Everything settled after the cursor, for the whole organization: every subscriber of this node
      // at the same place shares one read, and the very same objects (src/schema/shared-results.ts
      // shares executions per event object); each judges the events in memory, as the replay did in SQL.
      for (;;) {
        const from = cursor;
        const orgId = scope.orgId;
        const page = await services.events.shared(`${orgId}:${generation}:${from.xid}:${from.id}`, async () =>
          withMessages(loadMessages, orgId, await settledEventsAfter(services.db, orgId, from, REPLAY_PAGE)),
        );
        for (const delivered of page) {
          if (ended) break;
          cursor = positionOf(delivered.event);
          if (!matches(delivered.event, filter) || !admits(principal, delivered.event)) continue;
          const selected = select(delivered, eventVisibilityOf(principal));
          if (selected !== null) yield selected;
        }
        if (ended || page.length < REPLAY_PAGE) break;
      }
    }
  } finally {
    unfollow();
    unsubscribe();
    controller.signal.removeEventListener("abort", end);
  }
}
