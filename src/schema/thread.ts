import type { GraphQLResolveInfo } from "graphql";
import { isTimeKey } from "../db/keyset.ts";
import { type MessageSummary, messageKey, messagesOfThreads } from "../mail/repository.ts";
import { deleteThread, updateThreadLabels } from "../mail/service.ts";
import {
  listThreads,
  THREAD_AGGREGATES,
  type Thread,
  type ThreadAggregate,
  threadKey,
  threadsByIds,
} from "../mail/thread-repository.ts";
import type { ListFilter } from "../mail/visibility.ts";
import { builder, requires } from "./builder.ts";
import { type ConnectionArgs, connectionOf, keysetConnection } from "./connection.ts";
import { type Context, scopeOf } from "./context.ts";
import { DeletePayloadRef } from "./delete.ts";
import { decodeId, optionalId } from "./global-id.ts";
import { InboxRef } from "./inbox.ts";
import { LABEL_FILTER } from "./input-rules.ts";
import { contextLoader, inIdOrder, loadableNodeRef } from "./loaders.ts";
import { MessageRef, messageColumns } from "./message.ts";
import { ascending, MessageFilterInput, messageFilterOf, SortOrderEnum } from "./message-filter.ts";
import { selectedFieldNames } from "./selection.ts";

export const ThreadRef = loadableNodeRef<Thread, string, string>("Thread", {
  id: { resolve: (thread) => thread.id },
  load: async (ids, context) =>
    inIdOrder(ids, await threadsByIds(context.services.db, scopeOf(context), ids), "Thread"),
});

/** One page of a thread list in its order, computing only the aggregates its selection reads. */
function threadPage(
  args: ConnectionArgs & { order?: "NEWEST_FIRST" | "OLDEST_FIRST" | null },
  context: Context,
  info: GraphQLResolveInfo,
  filter: ListFilter,
) {
  return keysetConnection(
    args,
    threadKey,
    isTimeKey,
    (page) => listThreads(context.services.db, scopeOf(context), filter, page, wantedAggregates(info)),
    { ascending: ascending(args.order) },
  );
}

/** The aggregates a thread list's selection reads (edges.node; each is named as its field). */
function wantedAggregates(info: GraphQLResolveInfo): Set<ThreadAggregate> {
  const fields = selectedFieldNames(info, ["edges", "node"]);
  return new Set(THREAD_AGGREGATES.filter((name) => fields.has(name)));
}

ThreadRef.implement({
  description:
    "A conversation in one inbox. Every aggregate (count, subject, preview, labels, senders, recipients, " +
    "lastMessageAt) is computed over the messages the caller can see.",
  fields: (t) => ({
    inbox: t.field({ type: InboxRef, resolve: (thread) => thread.inbox_id }),
    subject: t.exposeString("subject", { nullable: true }),
    preview: t.exposeString("preview", { nullable: true }),
    labels: t.exposeStringList("labels"),
    senders: t.exposeStringList("senders"),
    recipients: t.exposeStringList("recipients"),
    messageCount: t.exposeInt("message_count"),
    lastMessageAt: t.field({ type: "DateTime", resolve: (thread) => thread.last_message_at }),
    messages: t.connection(
      {
        type: MessageRef,
        ...requires("MESSAGE_READ"),
        description: "The thread's messages, oldest first.",
        resolve: (thread, args, context, info) =>
          keysetConnection(args, messageKey, isTimeKey, (page) => {
            const columns = messageColumns(info, ["edges", "node"]);
            // One statement for this page size and selection across every thread of the response.
            const loader = contextLoader<{ threadId: string; page: typeof page }, MessageSummary[]>(
              context,
              `threadMessages:${page.limit}:${page.inverted}:${page.after ?? ""}:${page.before ?? ""}:${columns}`,
              async (keys) => {
                const byThread = await messagesOfThreads(
                  context.services.db,
                  scopeOf(context),
                  keys.map((key) => key.threadId),
                  page,
                  columns,
                );
                return keys.map((key) => byThread.get(key.threadId) ?? []);
              },
              (key) => key.threadId,
            );
            return loader.load({ threadId: thread.id, page });
          }),
      },
      connectionOf(MessageRef),
    ),
  }),
});

builder.objectField(MessageRef, "thread", (t) =>
  t.field({ type: ThreadRef, resolve: (message) => message.thread_id }),
);

builder.objectField(InboxRef, "threads", (t) =>
  t.connection(
    {
      type: ThreadRef,
      ...requires("THREAD_READ"),
      description:
        "The inbox's threads the caller can see, most recent activity first unless `order` says otherwise.",
      args: {
        labels: t.arg.stringList({
          description: "Only threads whose visible labels include all of these.",
          ...LABEL_FILTER,
        }),
        filter: t.arg({ type: MessageFilterInput }),
        order: t.arg({ type: SortOrderEnum, defaultValue: "NEWEST_FIRST" }),
      },
      resolve: (inbox, args, context, info) =>
        threadPage(args, context, info, {
          inboxId: inbox.id,
          labels: args.labels ?? undefined,
          message: messageFilterOf(args.filter),
        }),
    },
    connectionOf(ThreadRef),
  ),
);

builder.queryFields((t) => ({
  threads: t.connection(
    {
      type: ThreadRef,
      ...requires("THREAD_READ"),
      description: "Threads the caller can see, most recent activity first unless `order` says otherwise.",
      args: {
        inboxId: t.arg.id(),
        podId: t.arg.id(),
        labels: t.arg.stringList({ ...LABEL_FILTER }),
        filter: t.arg({ type: MessageFilterInput }),
        order: t.arg({ type: SortOrderEnum, defaultValue: "NEWEST_FIRST" }),
      },
      resolve: (_root, args, context, info) =>
        threadPage(args, context, info, {
          inboxId: optionalId(args.inboxId, "Inbox"),
          podId: optionalId(args.podId, "Pod"),
          labels: args.labels ?? undefined,
          message: messageFilterOf(args.filter),
        }),
    },
    connectionOf(ThreadRef),
  ),
  thread: t.field({
    type: ThreadRef,
    ...requires("THREAD_READ"),
    args: { id: t.arg.id({ required: true }) },
    resolve: (_root, args) => decodeId(String(args.id), "Thread"),
  }),
}));

const DeleteThreadInput = builder.inputType("DeleteThreadInput", {
  fields: (t) => ({
    id: t.id({ required: true }),
    permanent: t.boolean({ description: "Delete for good now instead of moving to trash first." }),
  }),
});

builder.mutationField("deleteThread", (t) =>
  t.field({
    type: DeletePayloadRef,
    ...requires("THREAD_DELETE"),
    description:
      "The first delete moves the thread's messages to trash; deleting a thread already in trash, " +
      "or with permanent: true, removes them for good.",
    args: { input: t.arg({ type: DeleteThreadInput, required: true }) },
    resolve: async (_root, { input }, context) => {
      await deleteThread(
        context.services,
        scopeOf(context),
        decodeId(String(input.id), "Thread"),
        input.permanent ?? false,
      );
      return { deletedId: input.id };
    },
  }),
);

const UpdateThreadInput = builder.inputType("UpdateThreadInput", {
  fields: (t) => ({
    id: t.id({ required: true }),
    addLabels: t.stringList(),
    removeLabels: t.stringList({ description: "Remove `unread` to mark the thread read." }),
  }),
});

const UpdateThreadPayload = builder.simpleObject("UpdateThreadPayload", {
  fields: (t) => ({ thread: t.field({ type: ThreadRef }) }),
});

builder.mutationField("updateThread", (t) =>
  t.field({
    type: UpdateThreadPayload,
    ...requires("MESSAGE_UPDATE"),
    description:
      "Adds and removes labels on every message of the thread the caller can see (updateMessage's rules).",
    args: { input: t.arg({ type: UpdateThreadInput, required: true }) },
    resolve: async (_root, { input }, context) => ({
      thread: await updateThreadLabels(
        context.services,
        scopeOf(context),
        decodeId(String(input.id), "Thread"),
        input.addLabels,
        input.removeLabels,
      ),
    }),
  }),
);
