// Mailbox rules a caller applies to stored mail: labels and deleting threads.
import type { TenantScope } from "../auth/principal.ts";
import { badUserInput, notFound } from "../errors.ts";
import type { Services } from "../services.ts";
import { type MessageSummary, updateLabelsOfMessages, updateMessageLabels } from "./repository.ts";
import {
  deleteThreadMessages,
  labelThread,
  refreshThread,
  refreshThreadVisibility,
  threadsByIds,
} from "./thread-repository.ts";
import { hasHidingLabel } from "./visibility.ts";

/**
 * Set by the system when mail is received or sent (and `unauthenticated` on received mail that is
 * not: docs/authentication.md); nobody adds or removes them by hand.
 */
export const SYSTEM_LABELS: ReadonlySet<string> = new Set(["received", "sent", "unauthenticated"]);
const LABEL = /^[a-z0-9][a-z0-9_.:/-]{0,63}$/;
const MAX_LABELS_PER_CHANGE = 50;

export function normaliseLabels(labels: readonly string[] | null | undefined, field: string): string[] {
  const normalised = [...new Set((labels ?? []).map((label) => label.trim().toLowerCase()))];
  if (normalised.length > MAX_LABELS_PER_CHANGE) {
    throw badUserInput(`${field} may hold at most ${MAX_LABELS_PER_CHANGE} labels.`, field);
  }
  for (const label of normalised) {
    if (!LABEL.test(label)) {
      throw badUserInput(
        `${field}: "${label}" is not a label (1 to 64 of a-z 0-9 _ . : / -, starting with a letter or digit).`,
        field,
      );
    }
  }
  return normalised;
}

/** The labels to add and remove, checked: user labels only, none both added and removed. */
function labelChange(
  addLabels: readonly string[] | null | undefined,
  removeLabels: readonly string[] | null | undefined,
): { add: string[]; remove: string[] } {
  const add = normaliseLabels(addLabels, "addLabels");
  const remove = normaliseLabels(removeLabels, "removeLabels");
  for (const [labels, field] of [
    [add, "addLabels"],
    [remove, "removeLabels"],
  ] as const) {
    const system = labels.find((label) => SYSTEM_LABELS.has(label));
    if (system) throw badUserInput(`"${system}" is a system label: it cannot be added or removed.`, field);
  }
  const both = add.find((label) => remove.includes(label));
  if (both) throw badUserInput(`"${both}" is both added and removed.`, "removeLabels");
  return { add, remove };
}

export async function updateLabels(
  services: Pick<Services, "db">,
  scope: TenantScope,
  id: string,
  addLabels: readonly string[] | null | undefined,
  removeLabels: readonly string[] | null | undefined,
): Promise<MessageSummary> {
  const { db } = services;
  const { add, remove } = labelChange(addLabels, removeLabels);
  // Spam, blocked and trash decide where hidden-label callers see the thread.
  const message = hasHidingLabel([...add, ...remove])
    ? await db.transaction().execute(async (trx) => {
        const updated = await updateMessageLabels(trx, scope, id, add, remove);
        if (updated) await refreshThreadVisibility(trx, updated.org_id, [updated.thread_id]);
        return updated;
      })
    : await updateMessageLabels(db, scope, id, add, remove);
  if (!message) throw notFound("Message");
  return message;
}

export const MAX_MESSAGES_PER_UPDATE = 100;

/**
 * updateMessages: the same label change on 1 to 100 messages, all or nothing. Any id the caller
 * cannot see (missing, outside its scope, hidden by a label) is NOT_FOUND and nothing changes: the
 * update runs in a transaction that rolls back unless it touched every message named. The same
 * rules, statement and thread visibility refresh as updateMessage (updateLabels). In input order.
 */
export async function updateManyLabels(
  services: Pick<Services, "db">,
  scope: TenantScope,
  ids: readonly string[],
  addLabels: readonly string[] | null | undefined,
  removeLabels: readonly string[] | null | undefined,
): Promise<MessageSummary[]> {
  const unique = [...new Set(ids)];
  if (unique.length < 1 || unique.length > MAX_MESSAGES_PER_UPDATE) {
    throw badUserInput(`ids must name 1 to ${MAX_MESSAGES_PER_UPDATE} messages.`, "ids");
  }
  const { add, remove } = labelChange(addLabels, removeLabels);
  const updated = await services.db.transaction().execute(async (trx) => {
    const messages = await updateLabelsOfMessages(trx, scope, { ids: unique }, add, remove);
    if (messages.length !== unique.length) throw notFound("Message");
    if (hasHidingLabel([...add, ...remove]))
      await refreshThreadVisibility(trx, scope.orgId, [...new Set(messages.map((m) => m.thread_id))]);
    return messages;
  });
  const byId = new Map(updated.map((message) => [String(message.id), message]));
  return unique.map((id) => byId.get(id) as MessageSummary);
}

/**
 * updateThread: the label change on every message of the thread that the caller can see (others,
 * hidden from it, are left alone). NOT_FOUND when the caller cannot see the thread.
 */
export async function updateThreadLabels(
  services: Pick<Services, "db">,
  scope: TenantScope,
  threadId: string,
  addLabels: readonly string[] | null | undefined,
  removeLabels: readonly string[] | null | undefined,
): Promise<string> {
  const { add, remove } = labelChange(addLabels, removeLabels);
  return services.db.transaction().execute(async (trx) => {
    const [thread] = await threadsByIds(trx, scope, [threadId]);
    if (!thread) throw notFound("Thread");
    await updateLabelsOfMessages(trx, scope, { threadId }, add, remove);
    if (hasHidingLabel([...add, ...remove])) await refreshThreadVisibility(trx, scope.orgId, [threadId]);
    return threadId;
  });
}

/**
 * The first delete moves the thread's messages to trash; deleting a thread already in trash (or
 * with `permanent`) removes its messages for good. Only messages the caller can see are touched.
 */
export async function deleteThread(
  services: Pick<Services, "db">,
  scope: TenantScope,
  id: string,
  permanent: boolean,
): Promise<"trashed" | "deleted"> {
  const { db } = services;
  return db.transaction().execute(async (trx) => {
    const [thread] = await threadsByIds(trx, scope, [id]);
    if (!thread) throw notFound("Thread");
    if (!permanent && (await labelThread(trx, scope, id, "trash")) > 0) {
      await refreshThreadVisibility(trx, scope.orgId, [id]);
      return "trashed";
    }
    await deleteThreadMessages(trx, scope, id);
    await refreshThread(trx, scope.orgId, id);
    await refreshThreadVisibility(trx, scope.orgId, [id]);
    return "deleted";
  });
}
