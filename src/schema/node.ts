// Query.nodes: many objects by global id under node(id:)'s rules, one batched load per type
// (docs/schema.md, "Global ids").
import { resolveNodes } from "@pothos/plugin-relay";
import { GraphQLError } from "graphql";
import { forbidden } from "../auth/permissions.ts";
import { badUserInput } from "../errors.ts";
import { builder, NODE_READ_PERMISSIONS } from "./builder.ts";
import type { Context } from "./context.ts";
import { isNodeType, parseGlobalId } from "./global-id.ts";

export const MAX_NODE_IDS = 100;

builder.queryField("nodes", (t) =>
  t.field({
    type: [builder.nodeInterfaceRef()],
    nullable: { list: false, items: true },
    authScopes: { authenticated: true },
    description:
      `Objects by global id, in the order of \`ids\` (at most ${MAX_NODE_IDS}). An id the caller may not see, ` +
      "one that does not exist, was deleted or cannot be loaded by id is null, all alike; an id of a type whose " +
      "read permission the caller lacks is null with that FORBIDDEN error, as node(id:) would answer.",
    args: {
      ids: t.arg.idList({
        required: true,
        description: `Global ids, as any \`id\` field returns them; at most ${MAX_NODE_IDS}.`,
      }),
    },
    resolve: async (_root, { ids }, context, info) => {
      if (ids.length > MAX_NODE_IDS) throw badUserInput(`ids: at most ${MAX_NODE_IDS} ids per call.`, "ids");
      const denied = new Map<number, GraphQLError>();
      const wanted = ids.map((globalId, index) => {
        const parsed = parseGlobalId(String(globalId));
        if (!parsed || !isNodeType(info.schema, parsed.typename)) return null;
        const permission = NODE_READ_PERMISSIONS[parsed.typename];
        if (permission && !mayUse(context, permission)) {
          denied.set(index, forbidden(permission));
          return null;
        }
        return parsed;
      });
      const loaded = await resolveNodes(builder, context, info, wanted);
      return loaded.map((node, index) => {
        const refusal = denied.get(index);
        if (refusal) return refusal;
        // Missing and hidden rows both load as NOT_FOUND: both are null here, so nothing tells them apart.
        if (node instanceof GraphQLError && node.extensions.code === "NOT_FOUND") return null;
        return node;
      });
    },
  }),
);

function mayUse(context: Context, permission: Parameters<typeof forbidden>[0]): boolean {
  return context.principal.kind !== "anonymous" && context.principal.permissions.has(permission);
}
