// The one rule of label visibility, as SQL for every read of mail (docs/permissions.md, "Label
// visibility"): a message in the caller's scope that carries no label hidden from the caller.
import { type Expression, type SqlBool, sql } from "kysely";
import { HIDDEN_LABEL_PERMISSIONS, type TenantScope } from "../auth/principal.ts";
import type { Placeholder } from "../db/shaped.ts";
import type { MessageFilter } from "./message-filter.ts";

export interface ListFilter {
  inboxId?: string | undefined;
  podId?: string | undefined;
  /**
   * Every one of these labels must be present: on the message, or for a thread, each on one of its
   * visible messages (the lists' older `labels` argument).
   */
  labels?: readonly string[] | undefined;
  /** The conditions a message meets (a thread: one of its visible messages meets them all). */
  message?: MessageFilter | undefined;
}

/** A filter asking for a label hidden from the caller matches nothing (an empty list, not an error). */
export function asksForHiddenLabel(scope: TenantScope, labels: readonly string[] | undefined): boolean {
  return (labels ?? []).some((label) => scope.hiddenLabels.includes(label));
}

/** asksForHiddenLabel for a list's every label condition. */
export function filterAsksForHiddenLabel(scope: TenantScope, filter: ListFilter): boolean {
  return asksForHiddenLabel(scope, filter.labels) || asksForHiddenLabel(scope, filter.message?.labels);
}

export const textArray = (values: readonly string[]) => sql<string[]>`${[...values]}::text[]`;

/** SQL condition: message alias `m` is inside the scope and carries no hidden label. */
export function visible(scope: TenantScope, alias = "m"): Expression<SqlBool> {
  const m = sql.ref(alias);
  const parts = [sql`${m}.org_id = ${scope.orgId}`];
  if (scope.podId !== null) parts.push(sql`${m}.pod_id = ${scope.podId}`);
  if (scope.inboxId !== null) parts.push(sql`${m}.inbox_id = ${scope.inboxId}`);
  if (scope.hiddenLabels.length > 0) parts.push(sql`NOT (${m}.labels && ${textArray(scope.hiddenLabels)})`);
  return sql<SqlBool>`(${sql.join(parts, sql` AND `)})`;
}

/** What of a scope decides a statement's text (src/db/shaped.ts): which ids it has, which labels it hides. */
export interface ScopeShape {
  podScoped: boolean;
  inboxScoped: boolean;
  hiddenLabels: readonly string[];
}

export const scopeShape = (scope: TenantScope): ScopeShape => ({
  podScoped: scope.podId !== null,
  inboxScoped: scope.inboxId !== null,
  hiddenLabels: scope.hiddenLabels,
});

/** The scope's values, by the names shapedScope's placeholders take. */
export const scopeValues = (scope: TenantScope) => ({
  orgId: scope.orgId,
  podId: scope.podId,
  inboxId: scope.inboxId,
});

/** A scope of a statement's shape whose ids are its placeholders (src/db/shaped.ts). */
export function shapedScope(
  shape: ScopeShape,
  values: Record<"orgId" | "podId" | "inboxId", Placeholder>,
): TenantScope {
  const id = (placeholder: Placeholder) => placeholder as unknown as string;
  return {
    orgId: id(values.orgId),
    podId: shape.podScoped ? id(values.podId) : null,
    inboxId: shape.inboxScoped ? id(values.inboxId) : null,
    hiddenLabels: shape.hiddenLabels,
  };
}

/** The labels a thread_visibility.hidden_mask bit stands for: bit i is HIDING_LABELS[i]. */
export const HIDING_LABELS = Object.keys(HIDDEN_LABEL_PERMISSIONS);

export function hiddenMask(scope: TenantScope): number {
  return HIDING_LABELS.reduce(
    (mask, label, bit) => (scope.hiddenLabels.includes(label) ? mask | (1 << bit) : mask),
    0,
  );
}

/** Whether labels include one that hides a message from some callers (spam, blocked, trash). */
export function hasHidingLabel(labels: readonly string[]): boolean {
  return labels.some((label) => HIDING_LABELS.includes(label));
}

/** Visible messages of thread alias `t`, for the subqueries below (FROM messages m WHERE …). */
export const ofThread = (scope: TenantScope, alias = "m") =>
  sql`${sql.ref(`${alias}.org_id`)} = t.org_id AND ${sql.ref(`${alias}.thread_id`)} = t.id AND ${visible(scope, alias)}`;

/** Rows of `table` (alias) inside the scope: organization, and the caller's pod or inbox. */
export function inScope(scope: TenantScope, alias: string) {
  const parts = [sql`${sql.ref(`${alias}.org_id`)} = ${scope.orgId}`];
  if (scope.podId !== null) parts.push(sql`${sql.ref(`${alias}.pod_id`)} = ${scope.podId}`);
  if (scope.inboxId !== null) parts.push(sql`${sql.ref(`${alias}.inbox_id`)} = ${scope.inboxId}`);
  return sql.join(parts, sql` AND `);
}

/** The list's inbox and pod filters, on alias's columns. */
export function filtered(filter: ListFilter, alias: string) {
  const parts = [];
  if (filter.inboxId !== undefined) parts.push(sql`${sql.ref(`${alias}.inbox_id`)} = ${filter.inboxId}`);
  if (filter.podId !== undefined) parts.push(sql`${sql.ref(`${alias}.pod_id`)} = ${filter.podId}`);
  return parts;
}
