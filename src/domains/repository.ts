// Domains: SQL only, always inside the caller's TenantScope. The name → domain lookup is global.
import { type Selectable, sql } from "kysely";
import type { TenantScope } from "../auth/principal.ts";
import type { Db } from "../db/database.ts";
import type { KeysetPage } from "../db/keyset.ts";
import { pageById } from "../db/keyset.ts";
import type { DomainStatus, DomainTable, JsonObject } from "../db/types.ts";
import { recordEvent } from "../events/outbox.ts";

export type Domain = Selectable<DomainTable>;

/**
 * What a caller may read: an organization-wide caller every domain; a pod-scoped one its pod's
 * domains plus those shared by all pods (pod_id NULL); an inbox-scoped one none (docs/permissions.md:
 * domains are not among an inbox's rows).
 */
function readable(db: Db, scope: TenantScope) {
  let query = db.selectFrom("domains").selectAll().where("org_id", "=", scope.orgId);
  if (scope.inboxId !== null) return query.where(sql<boolean>`false`);
  const podId = scope.podId;
  if (podId !== null)
    query = query.where((eb) => eb.or([eb("pod_id", "=", podId), eb("pod_id", "is", null)]));
  return query;
}

export async function domainsByIds(db: Db, scope: TenantScope, ids: readonly string[]): Promise<Domain[]> {
  if (ids.length === 0) return [];
  return readable(db, scope).where("id", "in", ids).execute();
}

export async function listDomains(db: Db, scope: TenantScope, page: KeysetPage<string>): Promise<Domain[]> {
  const query = readable(db, scope);
  return pageById(query, "id", page).execute();
}

/**
 * The organization that has verified `domain`, if any (the global lookup holds only verified names:
 * db/migrations/2026_12_01_000007_domain_claims.ts). Reveals no row of that organization.
 */
export async function verifiedOwnerOf(db: Db, domain: string): Promise<string | undefined> {
  const row = await db
    .selectFrom("domain_names")
    .select("org_id")
    .where("domain", "=", domain)
    .executeTakeFirst();
  return row?.org_id;
}

/**
 * Records that this organization has verified the domain, in the transaction that marks it verified;
 * false when another organization verified the name first (then nothing is written).
 */
export async function claimVerifiedName(trx: Db, domain: Domain): Promise<boolean> {
  const claimed = await trx
    .insertInto("domain_names")
    .values({ domain: domain.domain, org_id: domain.org_id, domain_id: domain.id })
    .onConflict((conflict) => conflict.column("domain").doNothing())
    .returning("domain")
    .executeTakeFirst();
  if (claimed) return true;
  return (await verifiedOwnerOf(trx, domain.domain)) === domain.org_id;
}

export interface NewDomain {
  /** null: shared by every pod. The service has checked that the pod is inside the scope. */
  podId: string | null;
  domain: string;
  dkimSelector: string;
  dkimPrivateKey: string;
  dkimPublicKey: string;
}

/** Inserts the domain; a name the organization already added is a unique violation. */
export async function insertDomain(trx: Db, scope: TenantScope, domain: NewDomain): Promise<Domain> {
  return trx
    .insertInto("domains")
    .values({
      org_id: scope.orgId,
      pod_id: domain.podId,
      domain: domain.domain,
      dkim_selector: domain.dkimSelector,
      dkim_private_key: domain.dkimPrivateKey,
      dkim_public_key: domain.dkimPublicKey,
    })
    .returningAll()
    .executeTakeFirstOrThrow();
}

/**
 * A domain the caller may change, locked for the rest of the transaction when `lock` is set.
 *
 * Writes (here, `saveVerification`, `deleteDomain`) see what `readable` sees minus the shared
 * domains: a shared domain is read-only for a pod-scoped caller, and a write to it is NOT_FOUND,
 * the answer for every row outside what a caller may write. That tells the caller nothing it could
 * not already read, and keeps one rule for every mutation: outside the scope is NOT_FOUND, never
 * FORBIDDEN.
 */
export async function writableDomain(
  db: Db,
  scope: TenantScope,
  id: string,
  options: { lock?: boolean } = {},
): Promise<Domain | undefined> {
  let query = db.selectFrom("domains").selectAll().where("org_id", "=", scope.orgId).where("id", "=", id);
  if (scope.inboxId !== null) query = query.where(sql<boolean>`false`);
  if (scope.podId !== null) query = query.where("pod_id", "=", scope.podId);
  if (options.lock) query = query.forUpdate();
  return query.executeTakeFirst();
}

export interface VerificationResult {
  status: DomainStatus;
  dnsChecks: JsonObject;
  lastError: string | null;
  /** Set when this is the domain's first successful verification. */
  verifiedAt: Date | null;
}

export async function saveVerification(
  trx: Db,
  scope: TenantScope,
  id: string,
  result: VerificationResult,
): Promise<Domain | undefined> {
  const now = new Date();
  let query = trx
    .updateTable("domains")
    .set({
      status: result.status,
      dns_checks: JSON.stringify(result.dnsChecks),
      last_error: result.lastError,
      last_checked_at: now,
      updated_at: now,
      ...(result.verifiedAt ? { verified_at: result.verifiedAt } : {}),
    })
    .where("org_id", "=", scope.orgId)
    .where("id", "=", id);
  if (scope.inboxId !== null) query = query.where(sql<boolean>`false`);
  if (scope.podId !== null) query = query.where("pod_id", "=", scope.podId);
  return query.returningAll().executeTakeFirst();
}

/** The DOMAIN_VERIFIED event, written in the transaction that marks the domain verified. */
export async function insertDomainVerifiedEvent(trx: Db, scope: TenantScope, domain: Domain): Promise<void> {
  await recordEvent(trx, {
    orgId: scope.orgId,
    type: "DOMAIN_VERIFIED",
    podId: domain.pod_id,
    domainId: domain.id,
    payload: { domain: domain.domain },
  });
}

/** Whether an inbox of the organization has an address on `domain` (then it may not be deleted). */
export async function domainHasInboxes(db: Db, scope: TenantScope, domain: string): Promise<boolean> {
  const row = await db
    .selectFrom("inboxes")
    .select("id")
    .where("org_id", "=", scope.orgId)
    .where("domain", "=", domain)
    .limit(1)
    .executeTakeFirst();
  return row !== undefined;
}

/** Deletes a domain the caller may change (its name lookup cascades); undefined when there is none. */
export async function deleteDomain(db: Db, scope: TenantScope, id: string): Promise<Domain | undefined> {
  let query = db.deleteFrom("domains").where("org_id", "=", scope.orgId).where("id", "=", id);
  if (scope.inboxId !== null) query = query.where(sql<boolean>`false`);
  if (scope.podId !== null) query = query.where("pod_id", "=", scope.podId);
  return query.returningAll().executeTakeFirst();
}
