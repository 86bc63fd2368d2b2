import { scopeOf } from "../context.ts";
import { listPods, type Pod, podsByIds } from "../pods/repository.ts";
import { builder, requires } from "./builder.ts";
import { isIdKey, keysetConnection } from "./connection.ts";
import { inIdOrder } from "./loadable.ts";

export const PodRef = builder.loadableNodeRef<Pod, string, string>("Pod", {
  id: { resolve: (pod) => pod.id },
  load: async (ids, context) =>
    inIdOrder(ids, await podsByIds(context.services.db, scopeOf(context), ids), "Pod"),
});

PodRef.implement({
  fields: (t) => ({
    name: t.exposeString("name"),
    clientId: t.exposeString("client_id", { nullable: true }),
    createdAt: t.field({ type: "DateTime", resolve: (pod) => pod.created_at }),
  }),
});

builder.queryFields((t) => ({
  pods: t.connection({
    type: PodRef,
    ...requires("POD_READ"),
    resolve: (_root, args, context) =>
      keysetConnection(
        args,
        (pod: Pod) => pod.id,
        isIdKey,
        (page) => listPods(context.services.db, scopeOf(context), page),
      ),
  }),
  pod: t.field({
    type: PodRef,
    ...requires("POD_READ"),
    args: { id: t.arg.globalID({ required: true, for: PodRef }) },
    resolve: (_root, args) => args.id.id,
  }),
}));
