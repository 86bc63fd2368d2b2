// Fans events out to this node's subscribers. One LISTEN connection per node receives every
// committed event; subscribers register per organization and get announcements in commit order.
import { LRUCache } from "lru-cache";
import type { PgListener } from "../db/listener.ts";
import type { Logger } from "../logger.ts";
import { EVENTS_CHANNEL, type EventAnnouncement } from "./outbox.ts";

type Subscriber = (announcement: EventAnnouncement) => void;

export class EventBus {
  private readonly byOrg = new Map<string, Set<Subscriber>>();
  /** Bumped when the LISTEN connection was lost: subscribers must re-read from their cursor. */
  private readonly resyncListeners = new Set<() => void>();
  // Purged when they expire, not when 10,000 newer reads push them out: each holds an event's message
  // (bodies and all) and, through src/events/shared-results.ts, that event's results.
  private readonly reads = new LRUCache<string, Promise<unknown>>({
    max: 10_000,
    ttl: 2_000,
    ttlAutopurge: true,
  });

  /** `observeLag`: told, per announcement received, how long after it was written it arrived (metrics). */
  constructor(
    private readonly logger?: Logger,
    private readonly observeLag?: (ms: number) => void,
  ) {}

  async attach(listener: PgListener): Promise<void> {
    await listener.listen(EVENTS_CHANNEL, (payload) => this.publish(payload));
    listener.on("reconnected", () => {
      for (const resync of this.resyncListeners) resync();
    });
  }

  private publish(payload: string): void {
    let announcement: EventAnnouncement;
    try {
      announcement = JSON.parse(payload) as EventAnnouncement;
    } catch {
      this.logger?.warn("ignoring a malformed event announcement");
      return;
    }
    if (this.observeLag && typeof announcement.at === "number") {
      this.observeLag(Math.max(0, Date.now() - announcement.at));
    }
    for (const subscriber of this.byOrg.get(announcement.orgId) ?? []) subscriber(announcement);
  }

  /** Calls `subscriber` for each event of the organization; `resync` after a lost connection. */
  subscribe(orgId: string, subscriber: Subscriber, resync: () => void): () => void {
    let set = this.byOrg.get(orgId);
    if (!set) {
      set = new Set();
      this.byOrg.set(orgId, set);
    }
    set.add(subscriber);
    this.resyncListeners.add(resync);
    return () => {
      set.delete(subscriber);
      if (set.size === 0) this.byOrg.delete(orgId);
      this.resyncListeners.delete(resync);
    };
  }

  /**
   * One read per event for every subscriber of this node: the first subscriber to handle an event
   * loads it (and its message), the others share that promise. Kept briefly: labels are "as at delivery".
   */
  shared<T>(key: string, load: () => Promise<T>): Promise<T> {
    let promise = this.reads.get(key) as Promise<T> | undefined;
    if (!promise) {
      promise = load();
      this.reads.set(key, promise);
      promise.catch(() => this.reads.delete(key));
    }
    return promise;
  }

  subscriberCount(): number {
    let count = 0;
    for (const set of this.byOrg.values()) count += set.size;
    return count;
  }
}
