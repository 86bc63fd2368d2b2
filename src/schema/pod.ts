import { listPods, type Pod, podsByIds } from "../pods/repository.ts";
import { createPod, removePod } from "../pods/service.ts";
import { builder, requires } from "./builder.ts";
import { connectionOf, isIdKey, keysetConnection } from "./connection.ts";
import { scopeOf } from "./context.ts";
import { DeleteInputRef, DeletePayloadRef } from "./delete.ts";
import { decodeId } from "./global-id.ts";
import { inIdOrder, loadableNodeRef } from "./loaders.ts";

export const PodRef = loadableNodeRef<Pod, string, string>("Pod", {
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
  pods: t.connection(
    {
      type: PodRef,
      ...requires("POD_READ"),
      resolve: (_root, args, context) =>
        keysetConnection(
          args,
          (pod: Pod) => pod.id,
          isIdKey,
          (page) => listPods(context.services.db, scopeOf(context), page),
        ),
    },
    connectionOf(PodRef),
  ),
  pod: t.field({
    type: PodRef,
    ...requires("POD_READ"),
    args: { id: t.arg.id({ required: true }) },
    resolve: (_root, args) => decodeId(String(args.id), "Pod"),
  }),
}));

const CreatePodInput = builder.inputType("CreatePodInput", {
  fields: (t) => ({ name: t.string({ required: true }), clientId: t.string() }),
});

const CreatePodPayload = builder.simpleObject("CreatePodPayload", {
  fields: (t) => ({ pod: t.field({ type: PodRef }) }),
});

builder.mutationFields((t) => ({
  createPod: t.field({
    type: CreatePodPayload,
    ...requires("POD_CREATE"),
    args: { input: t.arg({ type: CreatePodInput, required: true }) },
    resolve: async (_root, { input }, context) => ({
      pod: await createPod(context.services, scopeOf(context), input),
    }),
  }),
  deletePod: t.field({
    type: DeletePayloadRef,
    description: "Deletes the pod and everything in it: inboxes, mail, drafts, keys scoped to it.",
    ...requires("POD_DELETE"),
    args: { input: t.arg({ type: DeleteInputRef, required: true }) },
    resolve: async (_root, { input }, context) => {
      await removePod(context.services, scopeOf(context), decodeId(String(input.id), "Pod"));
      return { deletedId: input.id };
    },
  }),
}));
