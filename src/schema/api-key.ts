import { type ApiKey, apiKeysByIds, listApiKeys } from "../api-keys/repository.ts";
import { createApiKey, revokeApiKey, rollApiKey, updateApiKey } from "../api-keys/service.ts";
import {
  PERMISSION_DESCRIPTIONS,
  PERMISSIONS,
  type Permission,
  permissionFieldName,
  permissionFromFlag,
} from "../auth/permissions.ts";
import type { AuthenticatedPrincipal } from "../auth/principal.ts";
import { builder, requires } from "./builder.ts";
import { connectionOf, isIdKey, keysetConnection } from "./connection.ts";
import { type Context, scopeOf } from "./context.ts";
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
        t.boolean({
          description: `True when ${permission} is granted: ${PERMISSION_DESCRIPTIONS[permission]}`,
          resolve: (granted) => granted.has(permission),
        }),
      ]),
    ),
});

const ApiKeyPermissionsInput = builder.inputType("ApiKeyPermissionsInput", {
  description: "A whitelist: only flags set to true are granted; omitted or false is denied.",
  fields: (t) =>
    Object.fromEntries(
      PERMISSIONS.map((permission) => [
        permissionFieldName(permission),
        t.boolean({ description: `Grant ${permission}: ${PERMISSION_DESCRIPTIONS[permission]}` }),
      ]),
    ),
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
    allowedIps: t.stringList({
      nullable: true,
      description:
        "The addresses and CIDR blocks the key may be used from, normalized; null: any address. From elsewhere it gets HTTP 403.",
      resolve: (key) => key.allowed_ips,
    }),
    sendRequiresApproval: t.boolean({
      description: "Mail the key sends waits for approval; keys it creates inherit this.",
      resolve: (key) => key.send_requires_approval,
    }),
  }),
});

/** The whitelist an ApiKeyPermissionsInput grants: the flags set to true. */
function requestedPermissions(input: Record<string, boolean | null | undefined>): Permission[] {
  return PERMISSIONS.filter((p) => input[permissionFieldName(p)] === true);
}

function callerOf(context: Context) {
  return { principal: context.principal as AuthenticatedPrincipal, scope: scopeOf(context) };
}

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
    allowedIps: t.stringList({
      description:
        "IPv4/IPv6 addresses or CIDR blocks (at most 50) the key may be used from. Left out: the creator's own allow-list (none: any address); a key bound to a list can only narrow it.",
    }),
    sendRequiresApproval: t.boolean({
      description:
        "Mail the key sends waits for approval. Always true for a key made by an approval-bound key.",
    }),
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
      const requested = input.permissions == null ? null : requestedPermissions(input.permissions);
      return createApiKey(context.services, callerOf(context), {
        name: input.name,
        podId: optionalId(input.podId, "Pod"),
        inboxId: optionalId(input.inboxId, "Inbox"),
        permissions: requested,
        expiresAt: input.expiresAt,
        allowedIps: input.allowedIps,
        sendRequiresApproval: input.sendRequiresApproval,
      });
    },
  }),
);

const RollApiKeyInput = builder.inputType("RollApiKeyInput", {
  fields: (t) => ({
    id: t.id({ required: true }),
    expireOldAt: t.field({
      type: "DateTime",
      description: "When the old key stops working: default 24 hours from now, at most 7 days.",
    }),
  }),
});

builder.mutationField("rollApiKey", (t) =>
  t.field({
    type: CreateApiKeyPayload,
    ...requires("API_KEY_CREATE"),
    description:
      "A new secret for a key inside your scope, with its name, scope, permissions, allow-list and expiry (never wider than yours); the old secret keeps working until expireOldAt.",
    args: { input: t.arg({ type: RollApiKeyInput, required: true }) },
    resolve: (_root, { input }, context) =>
      rollApiKey(context.services, callerOf(context), {
        id: decodeId(String(input.id), "ApiKey"),
        expireOldAt: input.expireOldAt,
      }),
  }),
);

const UpdateApiKeyInput = builder.inputType("UpdateApiKeyInput", {
  fields: (t) => ({
    id: t.id({ required: true }),
    name: t.string(),
    permissions: t.field({
      type: ApiKeyPermissionsInput,
      description: "The flags to keep: the key keeps only those it has and you have (it can only narrow).",
    }),
    expiresAt: t.field({
      type: "DateTime",
      description: "Only earlier than the key's expiry, or set where it has none.",
    }),
    allowedIps: t.stringList({
      description:
        "A new allow-list (inside your own, when you are bound to one); null lifts it, which only a caller without an allow-list may do.",
    }),
    sendRequiresApproval: t.boolean({
      description: "true by anyone allowed; false only by a caller that is not approval-bound itself.",
    }),
  }),
});

const UpdateApiKeyPayload = builder.simpleObject("UpdateApiKeyPayload", {
  fields: (t) => ({ apiKey: t.field({ type: ApiKeyRef }) }),
});

builder.mutationField("updateApiKey", (t) =>
  t.field({
    type: UpdateApiKeyPayload,
    ...requires("API_KEY_CREATE"),
    description:
      "Narrows a key inside your scope; the change is in force on the next request, on every node.",
    args: { input: t.arg({ type: UpdateApiKeyInput, required: true }) },
    resolve: async (_root, { input }, context) => {
      const apiKey = await updateApiKey(context.services, callerOf(context), {
        id: decodeId(String(input.id), "ApiKey"),
        name: input.name ?? undefined,
        permissions: input.permissions == null ? undefined : requestedPermissions(input.permissions),
        // An explicit null is a request (refused for expiresAt, a lift for allowedIps); left out is none.
        expiresAt: "expiresAt" in input ? input.expiresAt : undefined,
        allowedIps: "allowedIps" in input ? input.allowedIps : undefined,
        sendRequiresApproval: input.sendRequiresApproval,
      });
      return { apiKey };
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
