// Phrase search that scales (docs/search.md, "Phrases"): the GIN index of search_vector stores no
// positions, so a phrase of common words ("invoice payment") could only be answered by reading the
// vector of every message holding both words. Each message's adjacent word pairs are indexed as
// extra lexemes ("invoice payment", with a space no parsed word contains) by an expression index
// over mail_search_pairs(search_vector): a phrase asks that index for the rows holding all of its
// pairs, as selective as a rare word, and checks the exact phrase on those rows only.
//
// Two changes to what is stored:
// - mail_search_vector() leaves one empty position between fields (subject, people, filenames,
//   body), so neither a phrase nor a pair runs from the end of one field into the next.
// - Every stored vector is rebuilt with it, in one UPDATE, as the first search migration did.
// The pairs are not a column: the expression index holds them, so the table's rows (which a search
// of a common word walks) do not grow.
import { type Kysely, sql } from "kysely";

/** Every stored vector rebuilt with mail_search_vector() as it now stands, in one statement. */
const rebuildVectors = (db: Kysely<unknown>) =>
  sql`
    UPDATE messages m SET search_vector = mail_search_vector(m.subject, m.from_address, m.from_name,
      m.to_addresses, m.to_names, m.cc_addresses, m.cc_names,
      (SELECT array_agg(a.filename ORDER BY a.id) FROM attachments a
        WHERE a.org_id = m.org_id AND a.message_id = m.id),
      m.text_body, m.html_body)
  `.execute(db);

export async function up(db: Kysely<unknown>): Promise<void> {
  // The separator is a lexeme of one space, which the parser never produces: added between fields
  // with its own position, then removed, leaving the gap.
  await sql`
    CREATE OR REPLACE FUNCTION mail_search_vector(subject text, from_address text, from_name text,
      to_addresses text[], to_names text[], cc_addresses text[], cc_names text[], filenames text[],
      text_body text, html_body text) RETURNS tsvector
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
      SELECT ts_delete(
        setweight(to_tsvector('simple', mail_fold(coalesce(subject, ''))), 'A') || $gap$' ':1$gap$::tsvector ||
        setweight(to_tsvector('simple', mail_fold(concat_ws(' ', from_name, array_to_string(to_names, ' '),
          array_to_string(cc_names, ' '),
          mail_address_words(ARRAY[from_address] || to_addresses || cc_addresses)))), 'B') ||
          $gap$' ':1$gap$::tsvector ||
        setweight(to_tsvector('simple', mail_fold(mail_filename_words(filenames))), 'C') ||
          $gap$' ':1$gap$::tsvector ||
        setweight(to_tsvector('simple', mail_fold(left(coalesce(text_body,
          regexp_replace(left(html_body, 400000), '<[^>]*>', ' ', 'g'), ''), 100000))), 'D'),
        ' ')
    $$`.execute(db);
  // The pairs of lexemes at adjacent positions of a vector, each "first second", as a vector
  // without positions. Read from the vector itself, so a pair exists exactly where the vector
  // matches the phrase `first <-> second`, with two exceptions that only lose index entries:
  // pairs longer than MAX_PAIR_BYTES (src/mail/search.ts), so a body's pairs stay far below a
  // tsvector's 1 MB, and pairs at the last position (16,383), where PostgreSQL piles up every word of
  // a longer text. A window over the positions (lead) rather than a self-join: a third faster, and
  // this runs for every stored message.
  await sql`
    CREATE FUNCTION mail_search_pairs(vector tsvector) RETURNS tsvector
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
      SELECT coalesce(array_to_tsvector(array_agg(x.pair)
        FILTER (WHERE x.next = x.p + 1 AND x.next < 16383 AND octet_length(x.pair) <= 47)), ''::tsvector)
      FROM (SELECT u.lexeme || ' ' || lead(u.lexeme) OVER w AS pair, p, lead(p) OVER w AS next
        FROM unnest(vector) u, unnest(u.positions) p WINDOW w AS (ORDER BY p)) x
    $$`.execute(db);
  await rebuildVectors(db);
  await sql`
    CREATE INDEX messages_org_id_search_pairs_idx ON messages USING gin (org_id, mail_search_pairs(search_vector))
  `.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`DROP INDEX IF EXISTS messages_org_id_search_pairs_idx`.execute(db);
  await sql`DROP FUNCTION IF EXISTS mail_search_pairs(tsvector)`.execute(db);
  await sql`
    CREATE OR REPLACE FUNCTION mail_search_vector(subject text, from_address text, from_name text,
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
  await rebuildVectors(db);
}
