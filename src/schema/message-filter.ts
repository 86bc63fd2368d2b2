// MessageFilter and SortOrder: how every list of mail (messages, threads, search) is narrowed and
// ordered. Conditions combine with AND; a thread matches when one of its visible messages matches.
import type { MessageFilter } from "../mail/message-filter.ts";
import { builder } from "./builder.ts";
import { LABEL_FILTER } from "./input-rules.ts";

export const MessageFilterInput = builder.inputType("MessageFilter", {
  description:
    "Conditions a message must meet, all of them. For threads: one of the thread's visible messages meets them all. " +
    "Text conditions are case-insensitive substrings.",
  fields: (t) => ({
    labels: t.stringList({
      description: "Every one of these labels. A label hidden from the caller matches nothing.",
      ...LABEL_FILTER,
    }),
    from: t.string({ description: "A substring of the sender's address or display name." }),
    to: t.string({ description: "A substring of the address or display name of any To or Cc recipient." }),
    subject: t.string({ description: "A substring of the subject." }),
    since: t.field({ type: "DateTime", description: "Created at or after this instant." }),
    until: t.field({ type: "DateTime", description: "Created before this instant." }),
    hasAttachments: t.boolean({ description: "With (true) or without (false) attachments." }),
    authenticated: t.boolean({
      description:
        "Received from outside and authenticated (true) or not (false). Mail sent here or delivered between " +
        "hosted inboxes, whose authentication is null, matches neither.",
    }),
  }),
});

export const SortOrderEnum = builder.enumType("SortOrder", {
  description: "The order of a list: by creation (messages) or by last visible activity (threads).",
  values: {
    NEWEST_FIRST: { description: "The most recent first (the default)." },
    OLDEST_FIRST: { description: "The oldest first." },
  } as const,
});

/** The filter as the repositories take it: absent conditions left out. */
export function messageFilterOf(
  input: typeof MessageFilterInput.$inferInput | null | undefined,
): MessageFilter | undefined {
  if (!input) return undefined;
  return {
    labels: input.labels ?? undefined,
    from: input.from ?? undefined,
    to: input.to ?? undefined,
    subject: input.subject ?? undefined,
    since: input.since ?? undefined,
    until: input.until ?? undefined,
    hasAttachments: input.hasAttachments ?? undefined,
    authenticated: input.authenticated ?? undefined,
  };
}

/** The list's direction for keysetConnection. */
export const ascending = (order: "NEWEST_FIRST" | "OLDEST_FIRST" | null | undefined) =>
  order === "OLDEST_FIRST";
