import { type ListEntry, listEntriesByIds, listListEntries } from "../list-entries/repository.ts";
import { createListEntry, removeListEntry } from "../list-entries/service.ts";
import { builder, requires } from "./builder.ts";
import { connectionOf, isIdKey, keysetConnection } from "./connection.ts";
import { scopeOf } from "./context.ts";
import { DeleteInputRef, DeletePayloadRef } from "./delete.ts";
import { decodeId, optionalId } from "./global-id.ts";
import { InboxRef } from "./inbox.ts";
import { inputRule } from "./input-rules.ts";
import { inIdOrder, loadableNodeRef } from "./loaders.ts";
import { PodRef } from "./pod.ts";

export const ListDirectionEnum = builder.enumType("ListDirection", {
  values: {
    SEND: { description: "Addresses an inbox may (ALLOW) or may not (BLOCK) send to." },
    RECEIVE: { description: "Senders whose mail is accepted (ALLOW) or labelled `blocked` (BLOCK)." },
  } as const,
});

export const ListTypeEnum = builder.enumType("ListType", { values: ["ALLOW", "BLOCK"] as const });

export const ListEntryRef = loadableNodeRef<ListEntry, string, string>("ListEntry", {
  id: { resolve: (entry) => entry.id },
  load: async (ids, context) =>
    inIdOrder(ids, await listEntriesByIds(context.services.db, scopeOf(context), ids), "ListEntry"),
});

ListEntryRef.implement({
  description:
    "An email address or domain on an allow or block list, at the organization level (no pod, no inbox), a pod's, or an inbox's.",
  fields: (t) => ({
    direction: t.field({ type: ListDirectionEnum, resolve: (entry) => entry.direction }),
    type: t.field({ type: ListTypeEnum, resolve: (entry) => entry.type }),
    entry: t.exposeString("entry", { description: "A lower-case email address or domain." }),
    pod: t.field({ type: PodRef, nullable: true, resolve: (entry) => entry.pod_id }),
    inbox: t.field({ type: InboxRef, nullable: true, resolve: (entry) => entry.inbox_id }),
    reason: t.exposeString("reason", {
      nullable: true,
      description:
        "Why the entry exists: given when it was created, or the relay's answer for a suppression.",
    }),
    readOnly: t.exposeBoolean("read_only", {
      description:
        "Added by the system: a SEND BLOCK entry for an address a relay refused for good. It may be deleted (to try the address again), never created.",
    }),
    createdAt: t.field({ type: "DateTime", resolve: (entry) => entry.created_at }),
  }),
});

builder.queryField("listEntries", (t) =>
  t.connection(
    {
      type: ListEntryRef,
      ...requires("LIST_ENTRY_READ"),
      description:
        "Newest first. A pod-scoped caller sees its pod's entries (pod and inbox level); an inbox-scoped one its inbox's.",
      args: {
        direction: t.arg({ type: ListDirectionEnum, required: true }),
        type: t.arg({ type: ListTypeEnum, required: true }),
        podId: t.arg.id({ description: "Only entries of this pod, at the pod level or on its inboxes." }),
        inboxId: t.arg.id({ description: "Only entries of this inbox." }),
      },
      resolve: (_root, args, context) =>
        keysetConnection(
          args,
          (entry: ListEntry) => entry.id,
          isIdKey,
          (page) =>
            listListEntries(
              context.services.db,
              scopeOf(context),
              {
                direction: args.direction,
                type: args.type,
                podId: optionalId(args.podId, "Pod"),
                inboxId: optionalId(args.inboxId, "Inbox"),
              },
              page,
            ),
        ),
    },
    connectionOf(ListEntryRef),
  ),
);

const CreateListEntryInput = builder.inputType("CreateListEntryInput", {
  fields: (t) => ({
    direction: t.field({ type: ListDirectionEnum, required: true }),
    type: t.field({ type: ListTypeEnum, required: true }),
    entry: t.string({ required: true, description: "An email address or a domain; stored lower-case." }),
    podId: t.id({ description: "Put the entry on this pod's list." }),
    inboxId: t.id({
      description:
        "Put the entry on this inbox's list. Neither podId nor inboxId: the caller's own level (organization, pod or inbox).",
    }),
    reason: t.string({
      description: "Why: a note for people, at most 1000 characters.",
      ...inputRule({ maxLength: 1000 }),
    }),
  }),
});

const CreateListEntryPayload = builder.simpleObject("CreateListEntryPayload", {
  fields: (t) => ({ listEntry: t.field({ type: ListEntryRef }) }),
});

builder.mutationFields((t) => ({
  createListEntry: t.field({
    type: CreateListEntryPayload,
    ...requires("LIST_ENTRY_CREATE"),
    args: { input: t.arg({ type: CreateListEntryInput, required: true }) },
    resolve: async (_root, { input }, context) => ({
      listEntry: await createListEntry(context.services, scopeOf(context), {
        direction: input.direction,
        type: input.type,
        entry: input.entry,
        podId: optionalId(input.podId, "Pod"),
        inboxId: optionalId(input.inboxId, "Inbox"),
        reason: input.reason,
      }),
    }),
  }),
  deleteListEntry: t.field({
    type: DeletePayloadRef,
    ...requires("LIST_ENTRY_DELETE"),
    args: { input: t.arg({ type: DeleteInputRef, required: true }) },
    resolve: async (_root, { input }, context) => {
      await removeListEntry(context.services, scopeOf(context), decodeId(String(input.id), "ListEntry"));
      return { deletedId: input.id };
    },
  }),
}));
