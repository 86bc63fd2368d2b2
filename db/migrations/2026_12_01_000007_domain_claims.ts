// Domains are proven, not claimed. The global `domain_names` lookup used to take a name at
// createDomain, so an organization that added a domain it could not prove blocked its real owner
// forever. Now any number of organizations may add a name; the lookup holds only the organization
// that verified it (its DNS records point here), written in the transaction that verifies, and a
// name it holds can be neither added nor verified by anyone else.
//
// Within one organization a name is still added once: that uniqueness moves to `domains` itself.
import { type Kysely, sql } from "kysely";

export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    DELETE FROM domain_names n USING domains d
    WHERE d.org_id = n.org_id AND d.id = n.domain_id AND d.verified_at IS NULL
  `.execute(db);
  await sql`ALTER TABLE domains ADD CONSTRAINT domains_org_id_domain_key UNIQUE (org_id, domain)`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`ALTER TABLE domains DROP CONSTRAINT domains_org_id_domain_key`.execute(db);
  await sql`
    INSERT INTO domain_names (domain, org_id, domain_id)
    SELECT DISTINCT ON (domain) domain, org_id, id FROM domains ORDER BY domain, verified_at NULLS LAST, id
    ON CONFLICT (domain) DO NOTHING
  `.execute(db);
}
