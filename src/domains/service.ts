// Custom domain rules: who may register which name, its DKIM key, and DNS verification.
import { domainToASCII } from "node:url";
import type { TenantScope } from "../auth/principal.ts";
import { uniqueViolation } from "../db/errors.ts";
import { conflict, notFound } from "../errors.ts";
import { podsByIds } from "../pods/repository.ts";
import type { Services } from "../services.ts";
import { normalizeDomainName } from "./name.ts";
import { checkRecords, checksToJson, DKIM_SELECTOR, generateDkimKeyPair, mxHostOf } from "./records.ts";
import {
  claimVerifiedName,
  type Domain,
  deleteDomain,
  domainHasInboxes,
  insertDomain,
  insertDomainVerifiedEvent,
  saveVerification,
  verifiedOwnerOf,
  writableDomain,
} from "./repository.ts";

export interface CreateDomainInput {
  domain: string;
  podId?: string | undefined;
}

/**
 * Registers a domain. An organization-wide caller's domain is shared by every pod unless it names
 * one; a pod-scoped caller's belongs to its own pod. Several organizations may add a name; the first
 * to verify it owns it (docs/permissions.md, "Domains").
 */
export async function createDomain(
  services: Pick<Services, "db" | "config">,
  scope: TenantScope,
  input: CreateDomainInput,
): Promise<Domain> {
  const { db, config } = services;
  // The service's own names first: they are taken (CONFLICT) even where they would not be valid
  // custom domains (the default MAIL_DOMAIN, mailroom.localhost).
  const asked = domainToASCII(input.domain.trim().replace(/\.$/, ""));
  for (const hosted of new Set([config.mailDomain, mxHostOf(config)])) {
    if (asked === hosted || asked.endsWith(`.${hosted}`)) {
      throw conflict(`${asked} is this service's own domain.`, "domain");
    }
  }
  const name = normalizeDomainName(input.domain, "domain");
  // Domains are not among an inbox-scoped caller's rows (its ceiling has no DOMAIN_* permission).
  if (scope.inboxId !== null) throw notFound("Pod");
  let podId: string | null = scope.podId;
  if (input.podId !== undefined) {
    const [pod] = await podsByIds(db, scope, [input.podId]);
    if (!pod) throw notFound("Pod");
    podId = pod.id;
  }
  // Anyone may add a name nobody has proven; once one organization has verified it, it is theirs.
  const owner = await verifiedOwnerOf(db, name);
  if (owner !== undefined && owner !== scope.orgId) throw verifiedElsewhere(name);
  const taken = () => conflict(`${name} is already added to this organization.`, "domain");
  if (owner === scope.orgId) throw taken();
  const keys = await generateDkimKeyPair();
  try {
    return await db.transaction().execute((trx) =>
      insertDomain(trx, scope, {
        podId,
        domain: name,
        dkimSelector: DKIM_SELECTOR,
        dkimPrivateKey: keys.privateKey,
        dkimPublicKey: keys.publicKey,
      }),
    );
  } catch (error) {
    if (uniqueViolation(error) !== undefined) throw taken();
    throw error;
  }
}

/**
 * Looks up the domain's records and records the outcome: VERIFIED when MX, SPF and DKIM match
 * (DMARC is reported but optional), FAILED otherwise, with each record's own status. The first
 * successful verification writes a DOMAIN_VERIFIED event in the same transaction.
 */
export async function verifyDomain(
  services: Pick<Services, "db" | "config">,
  scope: TenantScope,
  id: string,
): Promise<Domain> {
  const { db, config } = services;
  const domain = await writableDomain(db, scope, id);
  if (!domain) throw notFound("Domain");
  const owner = await verifiedOwnerOf(db, domain.domain);
  if (owner !== undefined && owner !== domain.org_id) throw verifiedElsewhere(domain.domain);
  // DNS first, outside any transaction: a slow resolver must not hold a row lock.
  const result = await checkRecords(config, domain);
  return db.transaction().execute(async (trx) => {
    const current = await writableDomain(trx, scope, id, { lock: true });
    if (!current) throw notFound("Domain");
    // "First" means ever: a domain that fails later and recovers does not announce itself again.
    const firstVerification = result.verified && current.verified_at === null;
    const saved = await saveVerification(trx, scope, id, {
      status: result.verified ? "VERIFIED" : "FAILED",
      dnsChecks: checksToJson(result.checks),
      lastError: result.error,
      verifiedAt: firstVerification ? new Date() : null,
    });
    if (!saved) throw notFound("Domain");
    // The name is this organization's from now on, unless another proved it first (a race on one
    // name): then nothing of this verification is kept.
    if (result.verified && !(await claimVerifiedName(trx, saved))) throw verifiedElsewhere(saved.domain);
    if (firstVerification) await insertDomainVerifiedEvent(trx, scope, saved);
    return saved;
  });
}

/** One answer for a name another organization has proven: it names no one. */
function verifiedElsewhere(name: string) {
  return conflict(`${name} is verified by another organization.`, "domain");
}

/** Deletes a domain no inbox uses any more (its addresses would otherwise be left dangling). */
export async function removeDomain(
  services: Pick<Services, "db">,
  scope: TenantScope,
  id: string,
): Promise<Domain> {
  const { db } = services;
  return db.transaction().execute(async (trx) => {
    const domain = await writableDomain(trx, scope, id, { lock: true });
    if (!domain) throw notFound("Domain");
    if (await domainHasInboxes(trx, scope, domain.domain)) {
      throw conflict(`Inboxes still use ${domain.domain}; delete them first.`, "id");
    }
    const deleted = await deleteDomain(trx, scope, id);
    if (!deleted) throw notFound("Domain");
    return deleted;
  });
}
