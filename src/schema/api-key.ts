import { type ApiKey, apiKeysByIds, listApiKeys } from "../api-keys/repository.ts";
import { createApiKey, revokeApiKey } from "../api-keys/service.ts";
import {
  PERMISSIONS,
  type Permission,
  permissionFieldName,
  permissionFromFlag,
} from "../auth/permissions.ts";
import type { AuthenticatedPrincipal } from "../auth/principal.ts";
import { builder, requires } from "./builder.ts";
import { connectionOf, isIdKey, keysetConnection } from "./connection.ts";
import { scopeOf } from "./context.ts";
import { DeleteInputRef, DeletePayloadRef } from "./delete.ts";
import { decodeId, optionalId } from "./global-id.ts";
import { InboxRef } from "./inbox.ts";
import { inIdOrder, loadableNodeRef } from "./loaders.ts";
import { KeyScopeEnum } from "./permission.ts";
import { PodRef } from "./pod.ts";

/** Granted flags, one Boolean per permission. */
const ApiKeyPermissionsRef = builder.objectRef<ReadonlySet<Permission>>("ApiKeyPermissions").implement({
  description: "A key's permission whitelist: each flag is true when granted.",
  fields: (t) =>
    Object.fromEntries(
      PERMISSIONS.map((permission) => [
        permissionFieldName(permission),
        t.boolean({ resolve: (granted) => granted.has(permission) }),
      ]),
    ),
});

const ApiKeyPermissionsInput = builder.inputType("ApiKeyPermissionsInput", {
  description: "A whitelist: only flags set to true are granted; omitted or false is denied.",
  fields: (t) =>
    Object.fromEntries(PERMISSIONS.map((permission) => [permissionFieldName(permission), t.boolean()])),
});

export const ApiKeyRef = loadableNodeRef<ApiKey, string, string>("ApiKey", {
  id: { resolve: (key) => key.id },
  load: async (ids, context) =>
    inIdOrder(ids, await apiKeysByIds(context.services.db, scopeOf(context), ids), "ApiKey"),
});

ApiKeyRef.implement({
  description:
    "An API key. Its secret is shown once, in CreateApiKeyPayload; only a prefix is kept for display.",
  fields: (t) => ({
    name: t.exposeString("name"),
    prefix: t.exposeString("prefix", { description: "The first 8 characters after `mr_`." }),
    scope: t.field({ type: KeyScopeEnum, resolve: (key) => key.scope }),
    pod: t.field({ type: PodRef, nullable: true, resolve: (key) => key.pod_id }),
    inbox: t.field({ type: InboxRef, nullable: true, resolve: (key) => key.inbox_id }),
    permissions: t.field({
      type: ApiKeyPermissionsRef,
      nullable: true,
      description: "null: full access within the key's scope.",
      resolve: (key) =>
        key.permissions === null
          ? null
          : new Set(key.permissions.map(permissionFromFlag).filter((p): p is Permission => p !== undefined)),
    }),
    createdAt: t.field({ type: "DateTime", resolve: (key) => key.created_at }),
    lastUsedAt: t.field({ type: "DateTime", nullable: true, resolve: (key) => key.last_used_at }),
    expiresAt: t.field({ type: "DateTime", nullable: true, resolve: (key) => key.expires_at }),
  }),
});

builder.queryField("apiKeys", (t) =>
  t.connection(
    {
      type: ApiKeyRef,
      ...requires("API_KEY_READ"),
      args: {
        podId: t.arg.id(),
        inboxId: t.arg.id(),
      },
      resolve: (_root, args, context) =>
        keysetConnection(
          args,
          (key: ApiKey) => key.id,
          isIdKey,
          (page) =>
            listApiKeys(
              context.services.db,
              scopeOf(context),
              { podId: optionalId(args.podId, "Pod"), inboxId: optionalId(args.inboxId, "Inbox") },
              page,
            ),
        ),
    },
    connectionOf(ApiKeyRef),
  ),
);

const CreateApiKeyInput = builder.inputType("CreateApiKeyInput", {
  fields: (t) => ({
    name: t.string({ required: true }),
    podId: t.id({ description: "Scope the key to this pod." }),
    inboxId: t.id({ description: "Scope the key to this inbox." }),
    permissions: t.field({ type: ApiKeyPermissionsInput }),
    expiresAt: t.field({ type: "DateTime" }),
  }),
});

const CreateApiKeyPayload = builder.simpleObject("CreateApiKeyPayload", {
  fields: (t) => ({
    apiKey: t.field({ type: ApiKeyRef }),
    secret: t.string({ description: "The key itself. Shown once: it cannot be read again." }),
  }),
});

builder.mutationField("createApiKey", (t) =>
  t.field({
    type: CreateApiKeyPayload,
    ...requires("API_KEY_CREATE"),
    args: { input: t.arg({ type: CreateApiKeyInput, required: true }) },
    resolve: async (_root, { input }, context) => {
      const requested =
        input.permissions == null
          ? null
          : PERMISSIONS.filter(
              (p) =>
                (input.permissions as Record<string, boolean | null | undefined>)[permissionFieldName(p)] ===
                true,
            );
      return createApiKey(
        context.services,
        { principal: context.principal as AuthenticatedPrincipal, scope: scopeOf(context) },
        {
          name: input.name,
          podId: optionalId(input.podId, "Pod"),
          inboxId: optionalId(input.inboxId, "Inbox"),
          permissions: requested,
          expiresAt: input.expiresAt,
        },
      );
    },
  }),
);

builder.mutationField("deleteApiKey", (t) =>
  t.field({
    type: DeletePayloadRef,
    ...requires("API_KEY_DELETE"),
    args: { input: t.arg({ type: DeleteInputRef, required: true }) },
    resolve: async (_root, { input }, context) => {
      await revokeApiKey(context.services, scopeOf(context), decodeId(String(input.id), "ApiKey"));
      return { deletedId: input.id };
    },
  }),
);
