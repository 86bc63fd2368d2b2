// Keys for production (docs/permissions.md, "Keys in production"): an API key may be pinned to the
// addresses it is used from (`allowed_ips`: IPv4/IPv6 addresses and CIDR blocks, as the API
// normalized them; NULL is any address) and may be bound to approval (`send_requires_approval`:
// mail it sends waits for a person). Both are read with the key on every authentication, so they
// live on the row itself; adding a nullable column and a column with a constant default rewrites
// nothing and takes only a brief lock.
import { type Kysely, sql } from "kysely";

export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`ALTER TABLE api_keys
    ADD COLUMN allowed_ips text[],
    ADD COLUMN send_requires_approval boolean NOT NULL DEFAULT false`.execute(db);
  await sql`ALTER TABLE api_keys ADD CONSTRAINT api_keys_allowed_ips_bounded
    CHECK (allowed_ips IS NULL OR cardinality(allowed_ips) BETWEEN 1 AND 50)`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`ALTER TABLE api_keys DROP CONSTRAINT api_keys_allowed_ips_bounded`.execute(db);
  await sql`ALTER TABLE api_keys DROP COLUMN allowed_ips, DROP COLUMN send_requires_approval`.execute(db);
}
