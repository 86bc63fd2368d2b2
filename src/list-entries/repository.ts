// Allow/block list entries: SQL only, always inside the caller's TenantScope — except
// `listEntriesFor`, the mail pipeline's lookup, which acts for the system (see there).
import type { Selectable } from "kysely";
import type { TenantScope } from "../auth/principal.ts";
import type { Db } from "../db/database.ts";
import type { KeysetPage } from "../db/keyset.ts";
import { pageById } from "../db/keyset.ts";
import type { ListDirection, ListEntryTable, ListType } from "../db/types.ts";

export type ListEntry = Selectable<ListEntryTable>;

/**
 * An organization-wide caller sees every entry (organization, pod and inbox level); a pod-scoped
 * one the entries of its pod and of its pod's inboxes; an inbox-scoped one its inbox's entries.
 */
function scoped(db: Db, scope: TenantScope) {
  let query = db.selectFrom("list_entries").selectAll().where("org_id", "=", scope.orgId);
  if (scope.podId !== null) query = query.where("pod_id", "=", scope.podId);
  if (scope.inboxId !== null) query = query.where("inbox_id", "=", scope.inboxId);
  return query;
}

export async function listEntriesByIds(
  db: Db,
  scope: TenantScope,
  ids: readonly string[],
): Promise<ListEntry[]> {
  if (ids.length === 0) return [];
  return scoped(db, scope).where("id", "in", ids).execute();
}

export interface ListEntryFilter {
  direction: ListDirection;
  type: ListType;
  /** Entries of this pod (at the pod level and on its inboxes). */
  podId?: string | undefined;
  /** Entries of this inbox. */
  inboxId?: string | undefined;
}

export async function listListEntries(
  db: Db,
  scope: TenantScope,
  filter: ListEntryFilter,
  page: KeysetPage<string>,
): Promise<ListEntry[]> {
  let query = scoped(db, scope).where("direction", "=", filter.direction).where("type", "=", filter.type);
  if (filter.podId !== undefined) query = query.where("pod_id", "=", filter.podId);
  if (filter.inboxId !== undefined) query = query.where("inbox_id", "=", filter.inboxId);
  return pageById(query, "id", page).execute();
}

export interface NewListEntry {
  direction: ListDirection;
  type: ListType;
  entry: string;
  /** Both null: organization level; podId only: the pod; both: one inbox. Checked against the scope by the service. */
  podId: string | null;
  inboxId: string | null;
  reason?: string | null;
}

export async function insertListEntry(db: Db, scope: TenantScope, entry: NewListEntry): Promise<ListEntry> {
  return db
    .insertInto("list_entries")
    .values({
      org_id: scope.orgId,
      pod_id: entry.podId,
      inbox_id: entry.inboxId,
      direction: entry.direction,
      type: entry.type,
      entry: entry.entry,
      reason: entry.reason ?? null,
    })
    .returningAll()
    .executeTakeFirstOrThrow();
}

/** Deletes an entry the scope contains; undefined when there is none. */
export async function deleteListEntry(
  db: Db,
  scope: TenantScope,
  id: string,
): Promise<ListEntry | undefined> {
  let query = db.deleteFrom("list_entries").where("org_id", "=", scope.orgId).where("id", "=", id);
  if (scope.podId !== null) query = query.where("pod_id", "=", scope.podId);
  if (scope.inboxId !== null) query = query.where("inbox_id", "=", scope.inboxId);
  return query.returningAll().executeTakeFirst();
}

/**
 * Every entry (allow and block) of `direction` that applies to mail of one inbox: those of the
 * organization, of the inbox's pod and of the inbox itself.
 *
 * For the mail pipeline, which acts as the system rather than for a caller: it has no TenantScope,
 * so it passes the ids of the inbox the mail belongs to, which it has already resolved (from the
 * recipient address or the sending inbox). `podId` must be that inbox's pod. Never call it with ids
 * taken from a caller's input: that is what the scoped functions above are for.
 */
export async function listEntriesFor(
  db: Db,
  orgId: string,
  podId: string,
  inboxId: string,
  direction: ListDirection,
): Promise<ListEntry[]> {
  return db
    .selectFrom("list_entries")
    .selectAll()
    .where("org_id", "=", orgId)
    .where("direction", "=", direction)
    .where((eb) =>
      eb.or([
        eb.and([eb("pod_id", "is", null), eb("inbox_id", "is", null)]),
        eb.and([eb("pod_id", "=", podId), eb("inbox_id", "is", null)]),
        eb("inbox_id", "=", inboxId),
      ]),
    )
    .orderBy("id")
    .execute();
}

/**
 * listEntriesFor for several inboxes in one statement: each inbox's entries (organization, pod
 * and inbox level), by inbox id. Acts for the system like listEntriesFor; the same warning applies.
 */
export async function listEntriesForInboxes(
  db: Db,
  inboxes: readonly { orgId: string; podId: string; inboxId: string }[],
  direction: ListDirection,
): Promise<Map<string, ListEntry[]>> {
  const unique = new Map(inboxes.map((inbox) => [inbox.inboxId, inbox]));
  const byInbox = new Map<string, ListEntry[]>([...unique.keys()].map((inboxId) => [inboxId, []]));
  if (unique.size === 0) return byInbox;
  const entries = await db
    .selectFrom("list_entries")
    .selectAll()
    .where("org_id", "in", [...new Set(inboxes.map((inbox) => inbox.orgId))])
    .where("direction", "=", direction)
    .where((eb) =>
      eb.or([
        eb.and([eb("pod_id", "is", null), eb("inbox_id", "is", null)]),
        eb.and([
          eb("pod_id", "in", [...new Set(inboxes.map((inbox) => inbox.podId))]),
          eb("inbox_id", "is", null),
        ]),
        eb("inbox_id", "in", [...unique.keys()]),
      ]),
    )
    .orderBy("id")
    .execute();
  for (const inbox of unique.values()) {
    const own = byInbox.get(inbox.inboxId) as ListEntry[];
    for (const entry of entries) {
      if (entry.org_id !== inbox.orgId) continue;
      if (
        entry.inbox_id === null
          ? entry.pod_id === null || entry.pod_id === inbox.podId
          : entry.inbox_id === inbox.inboxId
      )
        own.push(entry);
    }
  }
  return byInbox;
}

/**
 * Read-only SEND BLOCK entries at the organization level, one per address, for addresses a relay
 * refused for good; an address already on that list keeps its entry. Acts for the system (the
 * delivery job), like listEntriesFor: `orgId` is the sending message's organization.
 */
export async function insertSuppressions(
  db: Db,
  orgId: string,
  suppressions: readonly { address: string; reason: string }[],
): Promise<void> {
  if (suppressions.length === 0) return;
  await db
    .insertInto("list_entries")
    .values(
      suppressions.map(({ address, reason }) => ({
        org_id: orgId,
        pod_id: null,
        inbox_id: null,
        direction: "SEND" as const,
        type: "BLOCK" as const,
        entry: address.toLowerCase(),
        reason: reason.slice(0, 1000),
        read_only: true,
      })),
    )
    .onConflict((conflict) =>
      conflict.columns(["org_id", "pod_id", "inbox_id", "direction", "type", "entry"]).doNothing(),
    )
    .execute();
}
