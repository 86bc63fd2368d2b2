// A webhook sees what its creator could see (docs/webhooks.md). Until now a webhook heard every event
// of its pod, whatever the key that made it was allowed to read, and kept running after that key was
// deleted. Three changes:
//
// - webhooks record who made them (an API key or a person) and that creator's visibility: may it read
//   messages, may it read domains, which labels are hidden from it. Its scope is the webhook's own
//   pod_id/inbox_id, as before.
// - events carry their message's labels as they were when the event was written, so that whether a
//   reader may see an event is decided by the event row alone, and by the labels that held then. The
//   messages of an inbound batch are written in the same statement as their events, where a join could
//   not see them yet; and a later label change must not rewrite history.
// - deleting an API key disables the webhooks it created in the same transaction, whatever deletes it
//   (deleteApiKey, a pod or inbox taking its keys along, an agent's key rotation, or anything added
//   later): a trigger on the table, like an ON DELETE action, rather than a rule every caller must
//   remember.
import { type Kysely, sql } from "kysely";

export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    ALTER TABLE webhooks
      -- No foreign key: provenance outlives the key (the trigger below reacts to its deletion).
      ADD COLUMN created_by_api_key_id bigint,
      ADD COLUMN created_by_user_id bigint,
      -- The narrowest visibility unless told otherwise.
      ADD COLUMN message_read boolean NOT NULL DEFAULT false,
      ADD COLUMN domain_read boolean NOT NULL DEFAULT false,
      ADD COLUMN hidden_labels text[] NOT NULL DEFAULT '{spam,blocked,trash}',
      ADD CONSTRAINT webhooks_one_creator_check
        CHECK (created_by_api_key_id IS NULL OR created_by_user_id IS NULL)
  `.execute(db);
  await sql`
    CREATE INDEX webhooks_org_id_created_by_api_key_id_idx ON webhooks (org_id, created_by_api_key_id)
      WHERE created_by_api_key_id IS NOT NULL
  `.execute(db);
  // Who made the existing webhooks, and what they could read, is unknown: they stop until a person
  // or a key turns them back on, which records that caller as their creator.
  await sql`
    UPDATE webhooks SET enabled = false, disabled_reason = 'CREATOR_UNKNOWN', updated_at = now()
    WHERE enabled
  `.execute(db);

  // NULL: not about a message, or about one that was gone when this column was added (such an event
  // is treated as carrying every hiding label: only a reader who may see them all sees it).
  await sql`ALTER TABLE events ADD COLUMN message_labels text[]`.execute(db);
  await sql`
    UPDATE events e SET message_labels = m.labels
    FROM messages m
    WHERE m.org_id = e.org_id AND m.id = e.message_id AND e.message_id IS NOT NULL
  `.execute(db);

  await sql`
    CREATE FUNCTION disable_webhooks_of_deleted_api_keys() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      UPDATE webhooks w
      SET enabled = false, disabled_reason = 'CREATOR_KEY_REVOKED', updated_at = now()
      FROM deleted_api_keys k
      WHERE w.org_id = k.org_id AND w.created_by_api_key_id = k.id;
      RETURN NULL;
    END
    $$
  `.execute(db);
  // Per statement: deleting a pod removes its keys in one cascade, and their webhooks in one UPDATE.
  // The rows it touches share the deleted key's org_id, so it stays on one shard when distributed.
  await sql`
    CREATE TRIGGER api_keys_disable_webhooks AFTER DELETE ON api_keys
      REFERENCING OLD TABLE AS deleted_api_keys
      FOR EACH STATEMENT EXECUTE FUNCTION disable_webhooks_of_deleted_api_keys()
  `.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`DROP TRIGGER IF EXISTS api_keys_disable_webhooks ON api_keys`.execute(db);
  await sql`DROP FUNCTION IF EXISTS disable_webhooks_of_deleted_api_keys()`.execute(db);
  await sql`ALTER TABLE events DROP COLUMN IF EXISTS message_labels`.execute(db);
  await sql`DROP INDEX IF EXISTS webhooks_org_id_created_by_api_key_id_idx`.execute(db);
  await sql`
    ALTER TABLE webhooks
      DROP CONSTRAINT IF EXISTS webhooks_one_creator_check,
      DROP COLUMN IF EXISTS hidden_labels,
      DROP COLUMN IF EXISTS domain_read,
      DROP COLUMN IF EXISTS message_read,
      DROP COLUMN IF EXISTS created_by_user_id,
      DROP COLUMN IF EXISTS created_by_api_key_id
  `.execute(db);
}
