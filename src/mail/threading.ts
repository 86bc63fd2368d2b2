// Threading and duplicate rules for messages stored together, without the database: given what the
// inbox already holds (looked up in one statement by the store), decide for each message whether it is
// a retry of one already stored (here or earlier in the batch) and which thread it joins. The store
// then writes what this plans (docs/mail.md, "Threading" and "Duplicate detection and the content digest").
import type { InboxRef, MessageData, NewMessage, StoredCopy } from "./message.ts";

/** At most this many In-Reply-To/References ids are looked up to thread a message. */
export const MAX_THREAD_CANDIDATES = 100;

/** A thread a message joins: one that exists (`id`), or one the store creates (`id` undefined). */
export interface ThreadSlot {
  id: string | undefined;
  inbox: InboxRef;
  subject: string | null;
  createdAt: Date;
  lastMessageAt: Date;
}

/** For each message, in order: create it in `thread`, or it is a copy already stored, here or before. */
export type Plan =
  | { kind: "create"; thread: ThreadSlot; createdAt: Date; labels: string[] }
  | { kind: "stored"; copy: StoredCopy }
  | { kind: "same-as"; index: number };

/** What the inbox already holds, by index in the batch. */
export interface Known {
  /** Index → the copy its inbox already holds (same Message-ID, digest and direction). */
  duplicates: Map<number, Omit<StoredCopy, "created">>;
  /** Index → the thread of the most recent stored message it replies to or references. */
  threads: Map<number, string>;
}

export interface Planned {
  plans: Plan[];
  /** Threads to create, in the order their first message appears. */
  newThreads: ThreadSlot[];
  /** Existing threads that get messages, with their new last-message time. */
  existingThreads: ThreadSlot[];
}

/** Mail composed here has no digest: its Message-ID alone identifies it (the column's default). */
const NO_DIGEST = Buffer.alloc(0);

export function digestOf(data: MessageData): Buffer {
  return data.contentDigest ?? NO_DIGEST;
}

/** The Message-IDs a message replies to or references, the most direct first. */
export function threadCandidates(data: MessageData): string[] {
  return [
    ...new Set([data.inReplyTo, ...[...data.references].reverse()].filter((id): id is string => !!id)),
  ].slice(0, MAX_THREAD_CANDIDATES);
}

/**
 * Plans a batch as if each message were stored alone, one after the other:
 * - a message whose Message-ID, digest and direction its inbox holds (in `known`, or earlier in the
 *   batch) is not stored again; another message with that Message-ID is stored beside it;
 * - a message joins the thread of the most recent message of its inbox that it replies to or
 *   references (an earlier one in the batch is the most recent), else starts a thread;
 * - a thread's last-message time moves to its latest message, never back.
 */
export function planCopies(messages: readonly NewMessage[], known: Known, now: Date): Planned {
  const plans: Plan[] = [];
  /** Dedup key → index of the copy created here. */
  const createdHere = new Map<string, number>();
  /** Inbox + Message-ID → index of the latest copy created here, for threading. */
  const headersHere = new Map<string, number>();
  const existingThreads = new Map<string, ThreadSlot>();
  const newThreads: ThreadSlot[] = [];

  messages.forEach(({ inbox, data }, index) => {
    const key = `${inbox.orgId}/${inbox.inboxId}/${data.direction}/${digestOf(data).toString("hex")}/${data.messageIdHeader}`;
    const earlier = createdHere.get(key);
    if (earlier !== undefined) {
      plans.push({ kind: "same-as", index: earlier });
      return;
    }
    const stored = known.duplicates.get(index);
    if (stored) {
      plans.push({ kind: "stored", copy: { ...stored, created: false } });
      return;
    }
    const createdAt = data.createdAt ?? now;
    let thread: ThreadSlot | undefined;
    let latest = -1;
    for (const candidate of threadCandidates(data)) {
      latest = Math.max(latest, headersHere.get(`${inbox.orgId}/${inbox.inboxId}/${candidate}`) ?? -1);
    }
    if (latest >= 0) {
      thread = (plans[latest] as Extract<Plan, { kind: "create" }>).thread;
    } else {
      const threadId = known.threads.get(index);
      if (threadId !== undefined) {
        thread = existingThreads.get(`${inbox.orgId}/${threadId}`);
        if (!thread) {
          thread = { id: threadId, inbox, subject: null, createdAt, lastMessageAt: createdAt };
          existingThreads.set(`${inbox.orgId}/${threadId}`, thread);
        }
      } else {
        thread = { id: undefined, inbox, subject: data.subject, createdAt, lastMessageAt: createdAt };
        newThreads.push(thread);
      }
    }
    if (createdAt > thread.lastMessageAt) thread.lastMessageAt = createdAt;
    plans.push({ kind: "create", thread, createdAt, labels: [...new Set(data.labels)].sort() });
    createdHere.set(key, index);
    headersHere.set(`${inbox.orgId}/${inbox.inboxId}/${data.messageIdHeader}`, index);
  });
  return { plans, newThreads, existingThreads: [...existingThreads.values()] };
}
