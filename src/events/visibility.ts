// Whether a reader may see an event: the one rule behind webhook deliveries (with the webhook's
// recorded visibility), Webhook.deliveries, metrics, Query.events and the event replay (with the
// caller's), written once as SQL, and once in memory for live subscriptions, which judge the event
// rows they hear. test/event-visibility.test.ts holds the two to the same answers.
//
// An event is visible when it lies in the reader's scope and the reader may read what it is about:
// DOMAIN_VERIFIED needs DOMAIN_READ; DRAFT_PENDING_APPROVAL needs DRAFT_READ (it carries no labels:
// a draft has none); every other event is about a message and needs MESSAGE_READ and
// no label hidden from the reader among the labels the event carries. Those are the labels of when it
// happened, never of now: so whether an event is on a reader's cursor is settled once, and polling,
// subscribing and webhooks agree on it whenever each reads (docs/events.md, "One cursor").
import { type Expression, type RawBuilder, sql } from "kysely";
import {
  type AuthenticatedPrincipal,
  HIDDEN_LABEL_PERMISSIONS,
  type Principal,
  type TenantScope,
  tenantScopeOf,
} from "../auth/principal.ts";
import type { EventType } from "../db/types.ts";

/** What a reader of events may see: its TenantScope, and whether it may read messages and domains. */
export interface EventVisibility extends TenantScope {
  messageRead: boolean;
  domainRead: boolean;
  draftRead: boolean;
}

/**
 * The labels an event whose labels are unknown (a message event recorded before events carried them,
 * whose message was already gone) is taken to carry: every label that hides mail, so that only a
 * reader who may see them all sees it.
 */
export const UNKNOWN_LABELS: readonly string[] = Object.keys(HIDDEN_LABEL_PERMISSIONS);

const visibilities = new WeakMap<AuthenticatedPrincipal, EventVisibility>();

/** The caller's visibility (principals are immutable, so each one's is built once). */
export function eventVisibilityOf(principal: Principal): EventVisibility {
  if (principal.kind === "anonymous") throw new Error("eventVisibilityOf() called for an anonymous caller");
  let visibility = visibilities.get(principal);
  if (!visibility) {
    visibility = {
      ...tenantScopeOf(principal),
      messageRead: principal.permissions.has("MESSAGE_READ"),
      domainRead: principal.permissions.has("DOMAIN_READ"),
      draftRead: principal.permissions.has("DRAFT_READ"),
    };
    visibilities.set(principal, visibility);
  }
  return visibility;
}

/**
 * A visibility as SQL. `podId`/`inboxId`: `null` for no restriction, or an expression (which, for
 * columns of a row, may itself be NULL at run time and then restricts nothing either).
 */
export interface VisibilityExpressions {
  orgId: Expression<unknown>;
  podId: { expression: Expression<unknown>; nullable: boolean } | null;
  inboxId: { expression: Expression<unknown>; nullable: boolean } | null;
  messageRead: Expression<unknown>;
  domainRead: Expression<unknown>;
  draftRead: Expression<unknown>;
  hiddenLabels: Expression<unknown>;
}

/** A caller's visibility as SQL: its booleans inlined, so the planner sees through them. */
export function visibilityExpressions(visibility: EventVisibility): VisibilityExpressions {
  const id = (value: string | null) =>
    value === null ? null : { expression: sql`${value}::bigint`, nullable: false };
  return {
    orgId: sql`${visibility.orgId}::bigint`,
    podId: id(visibility.podId),
    inboxId: id(visibility.inboxId),
    messageRead: sql.lit(visibility.messageRead),
    domainRead: sql.lit(visibility.domainRead),
    draftRead: sql.lit(visibility.draftRead),
    hiddenLabels: sql`${[...visibility.hiddenLabels]}::text[]`,
  };
}

function sameOrAny(column: RawBuilder<unknown>, bound: VisibilityExpressions["podId"]): RawBuilder<boolean> {
  if (bound === null) return sql<boolean>`TRUE`;
  if (!bound.nullable) return sql<boolean>`${column} = ${bound.expression}`;
  return sql<boolean>`(${bound.expression} IS NULL OR ${column} = ${bound.expression})`;
}

/**
 * May `visibility` see the event row aliased `event` (columns org_id, type, pod_id, inbox_id,
 * message_labels)? A condition for WHERE: it may be NULL (an event without the pod or inbox that is
 * compared), which WHERE takes as no; never negate it. Its conjuncts stay plain comparisons on the
 * event's columns, so that indexes on them serve.
 */
export function eventReadable(
  event: string,
  visibility: EventVisibility | VisibilityExpressions,
): RawBuilder<boolean> {
  const v =
    typeof visibility.messageRead === "boolean"
      ? visibilityExpressions(visibility as EventVisibility)
      : (visibility as VisibilityExpressions);
  const column = (name: string) => sql.ref(`${event}.${name}`);
  return sql<boolean>`(${column("org_id")} = ${v.orgId}
    AND ${sameOrAny(column("pod_id"), v.podId)}
    AND ${sameOrAny(column("inbox_id"), v.inboxId)}
    AND CASE WHEN ${column("type")} = 'DOMAIN_VERIFIED' THEN ${v.domainRead}
      WHEN ${column("type")} = 'DRAFT_PENDING_APPROVAL' THEN ${v.draftRead}
      ELSE ${v.messageRead}
        AND NOT (coalesce(${column("message_labels")}, ${[...UNKNOWN_LABELS]}::text[]) && ${v.hiddenLabels})
      END)`;
}

export interface EventFacts {
  org_id: string;
  type: EventType;
  pod_id: string | null;
  inbox_id: string | null;
}

/** eventReadable in memory, for an event and the labels to judge it by (null: unknown). */
export function eventReadableBy(
  visibility: EventVisibility,
  event: EventFacts,
  labels: readonly string[] | null,
): boolean {
  if (event.org_id !== visibility.orgId) return false;
  if (visibility.podId !== null && event.pod_id !== visibility.podId) return false;
  if (visibility.inboxId !== null && event.inbox_id !== visibility.inboxId) return false;
  const permission = readPermissionOf(event.type);
  if (permission === "DOMAIN_READ") return visibility.domainRead;
  if (permission === "DRAFT_READ") return visibility.draftRead;
  return (
    visibility.messageRead &&
    !(labels ?? UNKNOWN_LABELS).some((label) => visibility.hiddenLabels.includes(label))
  );
}

/** The permission a reader needs to see events of this type (with the labels rule for messages). */
export function readPermissionOf(type: EventType): "MESSAGE_READ" | "DOMAIN_READ" | "DRAFT_READ" {
  if (type === "DOMAIN_VERIFIED") return "DOMAIN_READ";
  if (type === "DRAFT_PENDING_APPROVAL") return "DRAFT_READ";
  return "MESSAGE_READ";
}

/**
 * What an event shows of its message: the message as it is now, while the reader may still see it by
 * its labels now (mail visibility, docs/permissions.md), else nothing. Whether the event is delivered
 * was settled by the labels it recorded; a message hidden or deleted since is not shown through it.
 * (Scope needs no check here: a message stays in the inbox its events name.)
 */
export function shownMessage<M extends { labels: readonly string[] }>(
  message: M | null,
  hiddenLabels: readonly string[],
): M | null {
  return message && !message.labels.some((label) => hiddenLabels.includes(label)) ? message : null;
}
