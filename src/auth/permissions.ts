// The 35 permission flags as one catalog, the ceilings that cut them down, and the error for a
// permission the caller lacks (docs/permissions.md, "Permissions").
import { GraphQLError } from "graphql";

export const PERMISSIONS = [
  "INBOX_READ",
  "INBOX_CREATE",
  "INBOX_UPDATE",
  "INBOX_DELETE",
  "THREAD_READ",
  "THREAD_DELETE",
  "MESSAGE_READ",
  "MESSAGE_SEND",
  "MESSAGE_UPDATE",
  "LABEL_SPAM_READ",
  "LABEL_BLOCKED_READ",
  "LABEL_TRASH_READ",
  "DRAFT_READ",
  "DRAFT_CREATE",
  "DRAFT_UPDATE",
  "DRAFT_DELETE",
  "DRAFT_SEND",
  "WEBHOOK_READ",
  "WEBHOOK_CREATE",
  "WEBHOOK_UPDATE",
  "WEBHOOK_DELETE",
  "DOMAIN_READ",
  "DOMAIN_CREATE",
  "DOMAIN_UPDATE",
  "DOMAIN_DELETE",
  "LIST_ENTRY_READ",
  "LIST_ENTRY_CREATE",
  "LIST_ENTRY_DELETE",
  "METRICS_READ",
  "API_KEY_READ",
  "API_KEY_CREATE",
  "API_KEY_DELETE",
  "POD_READ",
  "POD_CREATE",
  "POD_DELETE",
] as const;

export type Permission = (typeof PERMISSIONS)[number];

/** What each flag allows, for the schema's documentation (the Permission enum and the key whitelist). */
export const PERMISSION_DESCRIPTIONS: Readonly<Record<Permission, string>> = {
  INBOX_READ:
    "Read inboxes in scope: `inboxes`, `inbox`, `node` of an Inbox and the inbox fields of other objects.",
  INBOX_CREATE: "Create inboxes (`createInbox`) in the caller's pod or organization.",
  INBOX_UPDATE: "Change an inbox's display name and settings (`updateInbox`).",
  INBOX_DELETE: "Delete an inbox with all its mail and drafts (`deleteInbox`).",
  THREAD_READ: "Read threads: `threads`, `thread`, Inbox.threads and `node` of a Thread.",
  THREAD_DELETE: "Delete a thread with all its messages (`deleteThread`).",
  MESSAGE_READ:
    "Read messages, their bodies, headers and attachments (and mint download URLs): `messages`, `message`, " +
    "`searchMessages`, `events` about messages.",
  MESSAGE_SEND: "Send, reply to and forward mail (`sendMessage`, `replyToMessage`, `forwardMessage`).",
  MESSAGE_UPDATE:
    "Add and remove labels on messages and threads (`updateMessage`, `updateMessages`, `updateThread`).",
  LABEL_SPAM_READ:
    "See messages labelled `spam`; without it they are hidden everywhere, as if they did not exist.",
  LABEL_BLOCKED_READ:
    "See messages labelled `blocked`; without it they are hidden everywhere, as if they did not exist.",
  LABEL_TRASH_READ:
    "See messages labelled `trash`; without it they are hidden everywhere, as if they did not exist.",
  DRAFT_READ: "Read drafts: `drafts`, `draft` and `node` of a Draft.",
  DRAFT_CREATE: "Create drafts (`createDraft`).",
  DRAFT_UPDATE: "Change and schedule drafts (`updateDraft`).",
  DRAFT_DELETE: "Delete drafts (`deleteDraft`).",
  DRAFT_SEND: "Send drafts (`sendDraft`) and approve drafts waiting for approval (`approveDraft`).",
  WEBHOOK_READ: "Read webhooks and their delivery attempts: `webhooks`, `webhook`, Webhook.deliveries.",
  WEBHOOK_CREATE: "Register webhooks (`createWebhook`).",
  WEBHOOK_UPDATE: "Change a webhook's URL, event types or enabled state (`updateWebhook`).",
  WEBHOOK_DELETE: "Delete webhooks (`deleteWebhook`).",
  DOMAIN_READ: "Read custom sending domains and their DNS records: `domains`, `domain`.",
  DOMAIN_CREATE: "Add custom domains (`createDomain`).",
  DOMAIN_UPDATE: "Re-check a domain's DNS records (`verifyDomain`).",
  DOMAIN_DELETE: "Remove custom domains (`deleteDomain`).",
  LIST_ENTRY_READ: "Read allow and block list entries (`listEntries`).",
  LIST_ENTRY_CREATE: "Add allow and block list entries (`createListEntry`).",
  LIST_ENTRY_DELETE: "Remove list entries, including read-only suppressions (`deleteListEntry`).",
  METRICS_READ: "Read event counts per time bucket (`metrics`).",
  API_KEY_READ: "List the API keys in scope (`apiKeys`); never their secrets.",
  API_KEY_CREATE:
    "Create, roll and change API keys in scope (`createApiKey`, `rollApiKey`, `updateApiKey`); a key never gets " +
    "more than its creator has.",
  API_KEY_DELETE: "Delete API keys in scope (`deleteApiKey`).",
  POD_READ: "Read pods: `pods`, `pod`, `node` of a Pod.",
  POD_CREATE: "Create pods (`createPod`); organization-scoped callers only.",
  POD_DELETE: "Delete a pod with everything in it (`deletePod`); organization-scoped callers only.",
};
export type PermissionSet = ReadonlySet<Permission>;
export type KeyScope = "ORGANIZATION" | "POD" | "INBOX";
export type OrganizationStatus = "ACTIVE" | "AGENT_UNVERIFIED" | "AGENT_VERIFIED";
export type Role = "ADMIN" | "MEMBER";

const PERMISSION_NAMES: ReadonlySet<string> = new Set(PERMISSIONS);

export function isPermission(value: string): value is Permission {
  return PERMISSION_NAMES.has(value);
}

/** `INBOX_READ` → `inboxRead`: the field name in `ApiKeyPermissions` and its input. */
export function permissionFieldName(permission: Permission): string {
  return permission.toLowerCase().replace(/_([a-z])/g, (_, letter: string) => letter.toUpperCase());
}

/** `INBOX_READ` → `inbox_read`: the flag as the database spells it. */
export function permissionFlag(permission: Permission): string {
  return permission.toLowerCase();
}

export function permissionFromFlag(flag: string): Permission | undefined {
  const name = flag.toUpperCase();
  return isPermission(name) ? name : undefined;
}

const ALL: PermissionSet = new Set(PERMISSIONS);

const family = (...prefixes: string[]) =>
  PERMISSIONS.filter((p) => prefixes.some((prefix) => p.startsWith(prefix)));
const isLabelRead = (p: Permission) => p.startsWith("LABEL_") && p.endsWith("_READ");

export const SCOPE_CEILINGS: Readonly<Record<KeyScope, PermissionSet>> = {
  ORGANIZATION: ALL,
  POD: new Set(PERMISSIONS.filter((p) => p !== "POD_CREATE" && p !== "POD_DELETE")),
  INBOX: new Set<Permission>([
    "INBOX_READ",
    "INBOX_UPDATE",
    ...family("THREAD_", "MESSAGE_", "DRAFT_", "LIST_ENTRY_", "API_KEY_"),
    ...PERMISSIONS.filter(isLabelRead),
    "METRICS_READ",
  ]),
};

/** An organization created by an agent is cut down until a human verifies it. */
export const ORGANIZATION_CEILINGS: Readonly<Record<OrganizationStatus, PermissionSet>> = {
  ACTIVE: ALL,
  AGENT_VERIFIED: ALL,
  AGENT_UNVERIFIED: new Set<Permission>([
    "INBOX_READ",
    "INBOX_UPDATE",
    ...family("THREAD_", "MESSAGE_", "DRAFT_"),
    ...PERMISSIONS.filter(isLabelRead),
    "METRICS_READ",
    "API_KEY_READ",
  ]),
};

/** Signed-in people act at organization scope; only administrators create and delete keys. */
export const ROLE_CEILINGS: Readonly<Record<Role, PermissionSet>> = {
  ADMIN: ALL,
  MEMBER: new Set(PERMISSIONS.filter((p) => p !== "API_KEY_CREATE" && p !== "API_KEY_DELETE")),
};

export interface EffectivePermissionInput {
  scope: KeyScope;
  /** The key's whitelist; `null` means full access within its ceilings. */
  whitelist: readonly Permission[] | null;
  organizationStatus: OrganizationStatus;
  /** Set for a signed-in person. */
  role?: Role | undefined;
}

/** Effective permissions = scope ceiling ∩ key whitelist (or all) ∩ organization ceiling ∩ role ceiling. */
export function effectivePermissions(input: EffectivePermissionInput): PermissionSet {
  const whitelist = input.whitelist === null ? ALL : new Set(input.whitelist);
  const organization = ORGANIZATION_CEILINGS[input.organizationStatus];
  const role = input.role === undefined ? ALL : ROLE_CEILINGS[input.role];
  const scope = SCOPE_CEILINGS[input.scope];
  return new Set(
    PERMISSIONS.filter((p) => scope.has(p) && whitelist.has(p) && organization.has(p) && role.has(p)),
  );
}

/** Stable catalog order, for output. */
export function sortPermissions(set: Iterable<Permission>): Permission[] {
  const wanted = new Set(set);
  return PERMISSIONS.filter((p) => wanted.has(p));
}

/**
 * A permission the caller lacks: the field is null with this error, the rest of the response stands.
 * `fix` says, in one sentence, what to grant and which key scopes can hold it.
 */
export function forbidden(requiredPermission: Permission): GraphQLError {
  return new GraphQLError(`This requires the ${requiredPermission} permission.`, {
    extensions: { code: "FORBIDDEN", requiredPermission, fix: permissionFix(requiredPermission) },
  });
}

/** The narrowest key scope whose ceiling holds a permission (organization for POD_CREATE, …). */
export function narrowestScopeFor(permission: Permission): KeyScope {
  if (SCOPE_CEILINGS.INBOX.has(permission)) return "INBOX";
  if (SCOPE_CEILINGS.POD.has(permission)) return "POD";
  return "ORGANIZATION";
}

const SCOPES_HOLDING: Record<KeyScope, string> = {
  INBOX: "a key scoped to the inbox, its pod or the organization",
  POD: "a key scoped to the pod or the organization (an inbox-scoped key cannot hold it)",
  ORGANIZATION: "an organization-scoped key (pod- and inbox-scoped keys cannot hold it)",
};

/** One sentence naming the permission to grant and the scope it needs. */
export function permissionFix(permission: Permission): string {
  return `Grant the ${permission} permission to ${SCOPES_HOLDING[narrowestScopeFor(permission)]} covering the objects you want, or use such a key.`;
}
