// Mailbox rules a caller applies to stored mail: labels and deleting threads.
import type { TenantScope } from "../auth/principal.ts";
import { badUserInput, notFound } from "../errors.ts";
import type { Services } from "../services.ts";
import { type MessageSummary, updateMessageLabels } from "./repository.ts";
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

export async function updateLabels(
  services: Pick<Services, "db">,
  scope: TenantScope,
  id: string,
  addLabels: readonly string[] | null | undefined,
  removeLabels: readonly string[] | null | undefined,
): Promise<MessageSummary> {
  const { db } = services;
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
