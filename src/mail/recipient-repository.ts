// Which hosted inbox an address delivers to. Mail arrives for an address, not for a caller, so
// this acts for the system: it reads the global `inbox_addresses` lookup and has no TenantScope.
import { sql } from "kysely";
import type { Db } from "../db/database.ts";

export interface HostedInbox {
  orgId: string;
  podId: string;
  inboxId: string;
  email: string;
  /** Refuse mail whose DMARC verdict is FAIL (docs/authentication.md). */
  rejectUnauthenticated: boolean;
}

/**
 * The inboxes that accept mail at these (lower-case) addresses: an inbox on `mailDomain`, or on a
 * domain its organization has VERIFIED for the inbox's pod (or for all pods). An inbox on a domain
 * whose verification later failed receives nothing until it is verified again.
 */
export async function hostedInboxesByAddress(
  db: Db,
  mailDomain: string,
  addresses: readonly string[],
): Promise<HostedInbox[]> {
  if (addresses.length === 0) return [];
  const result = await sql<HostedInbox>`
    SELECT i.org_id AS "orgId", i.pod_id AS "podId", i.id AS "inboxId", i.email,
      i.reject_unauthenticated AS "rejectUnauthenticated"
    FROM inbox_addresses a
    JOIN inboxes i ON i.org_id = a.org_id AND i.id = a.inbox_id
    WHERE a.email = ANY(${[...addresses]}::text[])
      AND (i.domain = ${mailDomain} OR EXISTS (
        SELECT 1 FROM domains d
        WHERE d.org_id = i.org_id AND d.domain = i.domain AND d.status = 'VERIFIED'
          AND (d.pod_id IS NULL OR d.pod_id = i.pod_id)))`.execute(db);
  // bigint columns arrive as strings (pg's default), like every other id in the application.
  return result.rows;
}
