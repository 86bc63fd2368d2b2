// List entry rules: what an entry may be, and at which level (organization, pod, inbox) it lands.
import type { TenantScope } from "../auth/principal.ts";
import type { Db } from "../db/database.ts";
import { uniqueViolation } from "../db/errors.ts";
import type { ListDirection, ListType } from "../db/types.ts";
import { parseDomainName, parseEmailAddress } from "../domains/name.ts";
import { badUserInput, conflict, notFound } from "../errors.ts";
import { inboxesByIds } from "../inboxes/repository.ts";
import { podsByIds } from "../pods/repository.ts";
import type { Services } from "../services.ts";
import { deleteListEntry, insertListEntry, type ListEntry } from "./repository.ts";

/** An email address (`someone@example.com`) or a domain (`example.com`), lower-case. */
export function normalizeEntry(value: string): string {
  const entry = value.includes("@") ? parseEmailAddress(value) : parseDomainName(value);
  if (entry === undefined) {
    throw badUserInput(
      "entry must be an email address (name@example.com) or a domain (example.com).",
      "entry",
    );
  }
  return entry;
}

export interface CreateListEntryInput {
  direction: ListDirection;
  type: ListType;
  entry: string;
  podId?: string | undefined;
  inboxId?: string | undefined;
  reason?: string | null | undefined;
}

export const MAX_REASON_LENGTH = 1000;

/**
 * Where the entry applies. Named inbox or pod: it must be inside the caller's scope (else NOT_FOUND).
 * Neither: the caller's own level: the organization, its pod, or its inbox. An inbox-scoped caller
 * cannot name a pod: the pod level is wider than its scope.
 */
async function level(db: Db, scope: TenantScope, input: CreateListEntryInput) {
  if (input.inboxId !== undefined) {
    const [inbox] = await inboxesByIds(db, scope, [input.inboxId]);
    if (!inbox) throw notFound("Inbox");
    if (input.podId !== undefined && input.podId !== inbox.pod_id) {
      throw badUserInput("inboxId is not an inbox of podId.", "inboxId");
    }
    return { podId: inbox.pod_id, inboxId: inbox.id };
  }
  if (input.podId !== undefined) {
    const [pod] = scope.inboxId !== null ? [] : await podsByIds(db, scope, [input.podId]);
    if (!pod) throw notFound("Pod");
    return { podId: pod.id, inboxId: null };
  }
  return { podId: scope.podId, inboxId: scope.inboxId };
}

export async function createListEntry(
  services: Pick<Services, "db">,
  scope: TenantScope,
  input: CreateListEntryInput,
): Promise<ListEntry> {
  const { db } = services;
  const entry = normalizeEntry(input.entry);
  const reason = input.reason?.trim() || null;
  if (reason !== null && reason.length > MAX_REASON_LENGTH) {
    throw badUserInput(`reason may be at most ${MAX_REASON_LENGTH} characters.`, "reason");
  }
  const where = await level(db, scope, input);
  try {
    return await insertListEntry(db, scope, {
      direction: input.direction,
      type: input.type,
      entry,
      reason,
      ...where,
    });
  } catch (error) {
    if (uniqueViolation(error) !== undefined) {
      throw conflict(`${entry} is already on this ${input.direction} ${input.type} list.`, "entry");
    }
    throw error;
  }
}

export async function removeListEntry(
  services: Pick<Services, "db">,
  scope: TenantScope,
  id: string,
): Promise<ListEntry> {
  const { db } = services;
  const entry = await deleteListEntry(db, scope, id);
  if (!entry) throw notFound("ListEntry");
  return entry;
}
