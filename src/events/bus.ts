// Wakes this node's subscribers when their organization has new settled events. Nothing announces an
// event when it is written (a NOTIFY would serialize every commit of the cluster: docs/events.md,
// "Order without a lock"); instead one watcher per node asks, every POLL_MS and only while someone
// subscribes, where each subscribed organization's settled events end, in one statement, and wakes
// that organization's subscribers when it moved. Subscribers then read from their own cursors.
import { LRUCache } from "lru-cache";
import type pg from "pg";
import type { Logger } from "../logger.ts";

type Subscriber = () => void;

/** How often the watcher looks for new settled events (while anyone subscribes). */
export const POLL_MS = 15;

export class EventBus {
  private readonly byOrg = new Map<string, Set<Subscriber>>();
  /** Per organization: bumped each time its settled events were seen to move. */
  private readonly generations = new Map<string, number>();
  /** Per organization: where its settled events ended at the last look ("xid:id"). */
  private readonly heads = new Map<string, string>();
  // Purged when they expire, not when 10,000 newer reads push them out: each holds events' messages
  // (bodies and all) and, through src/events/shared-results.ts, those events' results.
  private readonly reads = new LRUCache<string, Promise<unknown>>({
    max: 10_000,
    ttl: 2_000,
    ttlAutopurge: true,
  });
  private pool: pg.Pool | undefined;
  private timer: NodeJS.Timeout | undefined;
  private polling = false;
  private stopped = false;
  private held = 0;

  /** `observeLag`: told, per organization whose events moved, how long after its newest event was written it was seen (metrics). */
  constructor(
    private readonly logger?: Logger,
    private readonly observeLag?: (ms: number) => void,
  ) {}

  /**
   * Starts watching with the application's pool (the watcher runs only while someone subscribes). Its
   * statements go to the pool directly: they are the node's background work, not any request's, so
   * they stay out of the per-request statement count (Services.statementCount).
   */
  attach(pool: pg.Pool): void {
    this.pool = pool;
    this.stopped = false;
    this.schedule();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private schedule(): void {
    if (this.stopped || this.timer || this.polling || !this.pool || this.byOrg.size === 0) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.polling = true;
      this.poll().finally(() => {
        this.polling = false;
        this.schedule();
      });
    }, POLL_MS);
    this.timer.unref();
  }

  /** One statement for every subscribed organization: the newest settled event of each. */
  private async poll(): Promise<void> {
    const pool = this.pool;
    const orgIds = [...this.byOrg.keys()];
    if (!pool || orgIds.length === 0) return;
    let rows: { org_id: string; xid: string; id: string; created_at: Date }[];
    try {
      ({ rows } = await pool.query<{ org_id: string; xid: string; id: string; created_at: Date }>(
        `SELECT o.org_id::text AS org_id, top.xid::text AS xid, top.id::text AS id, top.created_at
         FROM unnest($1::bigint[]) AS o(org_id)
         CROSS JOIN LATERAL (
           SELECT e.xid, e.id, e.created_at FROM events e
           WHERE e.org_id = o.org_id AND e.xid < pg_snapshot_xmin(pg_current_snapshot())
           ORDER BY e.xid DESC, e.id DESC LIMIT 1
         ) AS top`,
        [orgIds],
      ));
    } catch (error) {
      // The database is away: look again at the next tick; subscribers keep their cursors.
      this.logger?.debug({ err: error }, "event watcher could not read");
      return;
    }
    const now = Date.now();
    for (const row of rows) {
      const head = `${row.xid}:${row.id}`;
      const before = this.heads.get(row.org_id);
      if (before === head) continue;
      this.heads.set(row.org_id, head);
      // Not on the first look at an organization that had events already: that is no delivery.
      if (before !== undefined) this.observeLag?.(Math.max(0, now - row.created_at.getTime()));
      this.wake(row.org_id);
    }
    // An organization without events yet: its first one will be a move like any other.
    for (const orgId of orgIds) if (!this.heads.has(orgId)) this.heads.set(orgId, "");
  }

  private wake(orgId: string): void {
    this.generations.set(orgId, this.generation(orgId) + 1);
    for (const subscriber of this.byOrg.get(orgId) ?? []) subscriber();
  }

  /** Changes each time the organization's settled events were seen to move: read again when it did. */
  generation(orgId: string): number {
    return this.generations.get(orgId) ?? 0;
  }

  /**
   * Calls `subscriber` each time the organization's settled events move. `counted: false`: a group
   * that wakes for subscribers held (hold()), not one itself.
   */
  subscribe(orgId: string, subscriber: Subscriber, { counted = true } = {}): () => void {
    if (!counted) this.held--;
    let set = this.byOrg.get(orgId);
    if (!set) {
      set = new Set();
      this.byOrg.set(orgId, set);
    }
    set.add(subscriber);
    this.schedule();
    let done = false;
    return () => {
      if (!counted && !done) this.held++;
      done = true;
      set.delete(subscriber);
      if (set.size === 0 && this.byOrg.get(orgId) === set) {
        this.byOrg.delete(orgId);
        this.heads.delete(orgId);
        this.generations.delete(orgId);
      }
    };
  }

  /**
   * One read for every subscriber of this node at the same place: the first subscriber to need it
   * loads it (events and their messages), the others share that promise. Kept briefly: labels are
   * "as at delivery".
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

  /**
   * Counts a subscriber that is woken through another (a WebSocket subscription served by the fan-out
   * of src/schema/fan-out.ts, whose group is the one woken). Returns what releases it.
   */
  hold(): () => void {
    this.held++;
    let released = false;
    return () => {
      if (!released) this.held--;
      released = true;
    };
  }

  /** Subscribers on this node: those woken, and those held. */
  subscriberCount(): number {
    let count = this.held;
    for (const set of this.byOrg.values()) count += set.size;
    return count;
  }
}
