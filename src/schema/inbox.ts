import { scopeOf } from "../context.ts";
import { type Inbox, inboxesByIds } from "../inboxes/repository.ts";
import { builder } from "./builder.ts";
import { inIdOrder } from "./loadable.ts";
import { PodRef } from "./pod.ts";

export const InboxRef = builder.loadableNodeRef<Inbox, string, string>("Inbox", {
  id: { resolve: (inbox) => inbox.id },
  load: async (ids, context) =>
    inIdOrder(ids, await inboxesByIds(context.services.db, scopeOf(context), ids), "Inbox"),
});

InboxRef.implement({
  fields: (t) => ({
    email: t.exposeString("email"),
    displayName: t.exposeString("display_name", { nullable: true }),
    pod: t.field({ type: PodRef, resolve: (inbox) => inbox.pod_id }),
    createdAt: t.field({ type: "DateTime", resolve: (inbox) => inbox.created_at }),
  }),
});
