// Full-text search over mail (docs/search.md): a stored tsvector per message and a GIN index led by
// the organization.
//
// The vector is built by one SQL function, mail_search_vector(), from the message's columns and its
// attachments' filenames. Attachments live in another table, so a GENERATED column cannot see them:
// the statement that stores a message computes the vector itself (src/mail/store.ts passes the
// filenames it is inserting), and this migration backfills existing rows in one UPDATE. Keeping the
// definition in the database means the store, the backfill and the benchmark seed cannot drift.
//
// Weights: subject A; sender and recipients (display names, addresses and address pieces) B;
// attachment filenames C; text body D (the HTML with its tags stripped when there is no text part).
// The configuration is `simple` (lower-casing, no stemming, no stop words): mail comes in every
// language, and an English stemmer mangles German, French or Spanish words and drops English stop
// words that are content elsewhere ("die", "a"). Addresses are added as text the same parser reads
// on the query side: the address, its local part, the local part's pieces split on . _ + -, the
// domain and the domain's first label, so `ann@example.com`, `ann.lee`, `lee` and `example.com`
// each find ann.lee@example.com.
import { type Kysely, sql } from "kysely";

export async function up(db: Kysely<unknown>): Promise<void> {
  // Lower case for every script. The database's own lower() and the text-search parser follow its
  // ctype, and an embedded database is initialised with locale C, which lower-cases only ASCII
  // (Übermorgen stayed Übermorgen); ICU's root locale lower-cases every alphabet the same way on
  // every server. Text and queries are folded with it before they are parsed.
  await sql`
    CREATE FUNCTION mail_fold(value text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT lower(value COLLATE "und-x-icu") $$`.execute(db);
  // The words an address is found by, as one text for to_tsvector('simple', …).
  await sql`
    CREATE FUNCTION mail_address_words(addresses text[]) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
      SELECT coalesce(string_agg(concat_ws(' ', a, local, regexp_replace(local, '[._+-]+', ' ', 'g'),
        domain, split_part(domain, '.', 1)), ' '), '')
      FROM unnest(addresses) AS address,
        LATERAL (SELECT lower(address) AS a) l,
        LATERAL (SELECT split_part(l.a, '@', 1) AS local,
          CASE WHEN position('@' IN l.a) > 0 THEN split_part(l.a, '@', 2) END AS domain) p
    $$`.execute(db);
  // The words a filename is found by: the whole name and its pieces (invoice-2024.pdf: invoice, 2024, pdf).
  await sql`
    CREATE FUNCTION mail_filename_words(filenames text[]) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
      SELECT coalesce(string_agg(f || ' ' || regexp_replace(f, '[^[:alnum:]]+', ' ', 'g'), ' '), '')
      FROM unnest(filenames) AS f WHERE f IS NOT NULL
    $$`.execute(db);
  await sql`
    CREATE FUNCTION mail_search_vector(subject text, from_address text, from_name text,
      to_addresses text[], to_names text[], cc_addresses text[], cc_names text[], filenames text[],
      text_body text, html_body text) RETURNS tsvector
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
      SELECT
        setweight(to_tsvector('simple', mail_fold(coalesce(subject, ''))), 'A') ||
        setweight(to_tsvector('simple', mail_fold(concat_ws(' ', from_name, array_to_string(to_names, ' '),
          array_to_string(cc_names, ' '),
          mail_address_words(ARRAY[from_address] || to_addresses || cc_addresses)))), 'B') ||
        setweight(to_tsvector('simple', mail_fold(mail_filename_words(filenames))), 'C') ||
        setweight(to_tsvector('simple', mail_fold(left(coalesce(text_body,
          regexp_replace(left(html_body, 400000), '<[^>]*>', ' ', 'g'), ''), 100000))), 'D')
    $$`.execute(db);
  await sql`ALTER TABLE messages ADD COLUMN search_vector tsvector NOT NULL DEFAULT ''::tsvector`.execute(db);
  // Backfill in one statement: messages of any size are rewritten once; the migration runs before
  // the server serves, and a batch loop would rewrite the same rows in more transactions.
  await sql`
    UPDATE messages m SET search_vector = mail_search_vector(m.subject, m.from_address, m.from_name,
      m.to_addresses, m.to_names, m.cc_addresses, m.cc_names,
      (SELECT array_agg(a.filename ORDER BY a.id) FROM attachments a
        WHERE a.org_id = m.org_id AND a.message_id = m.id),
      m.text_body, m.html_body)
  `.execute(db);
  // btree_gin (created by the first migration) lets a GIN index lead with the organization; the
  // inbox beside it narrows an inbox's search in the same bitmap.
  await sql`
    CREATE INDEX messages_org_id_search_idx ON messages USING gin (org_id, inbox_id, search_vector)
  `.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`DROP INDEX IF EXISTS messages_org_id_search_idx`.execute(db);
  await sql`ALTER TABLE messages DROP COLUMN IF EXISTS search_vector`.execute(db);
  await sql`DROP FUNCTION IF EXISTS mail_search_vector(text, text, text, text[], text[], text[], text[], text[], text, text)`.execute(
    db,
  );
  await sql`DROP FUNCTION IF EXISTS mail_filename_words(text[])`.execute(db);
  await sql`DROP FUNCTION IF EXISTS mail_address_words(text[])`.execute(db);
  await sql`DROP FUNCTION IF EXISTS mail_fold(text)`.execute(db);
}
