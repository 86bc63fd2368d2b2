// MessageFilter as SQL: the conditions a message must meet, each written as the expression its index
// was built on (db/migrations/…_message_details.ts), so a filtered page stays an index walk or a
// bitmap of the few matches. Labels are compared after the caller's visibility has hidden what it
// hides: asking for a hidden label matches nothing.
import { type RawBuilder, sql } from "kysely";
import { textArray } from "./visibility.ts";

export interface MessageFilter {
  /** Every one of these labels. */
  labels?: readonly string[] | undefined;
  /** Case-insensitive substring of the sender's address or name. */
  from?: string | undefined;
  /** Case-insensitive substring of any To or Cc recipient's address or name. */
  to?: string | undefined;
  /** Case-insensitive substring of the subject. */
  subject?: string | undefined;
  /** created_at >= since. */
  since?: Date | undefined;
  /** created_at < until. */
  until?: Date | undefined;
  hasAttachments?: boolean | undefined;
  /**
   * Received from outside and authenticated (true) or not (false); mail without a verdict (sent
   * here, or between hosted inboxes) matches neither. `false` walks a partial index of the
   * unauthenticated in time order; `true`, most inbound mail, filters the time-ordered walk.
   */
  authenticated?: boolean | undefined;
}

/** `text` as the inside of a LIKE pattern: its own % and _ (and the escape) match only themselves. */
function contains(text: string): string {
  return `%${text.toLowerCase().replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
}

/** The conditions of `filter` on message alias `alias`, to AND together (none: no condition). */
export function messageConditions(filter: MessageFilter | undefined, alias = "m"): RawBuilder<unknown>[] {
  if (!filter) return [];
  const column = (name: string) => sql.ref(`${alias}.${name}`);
  const parts: RawBuilder<unknown>[] = [];
  if (filter.labels?.length)
    parts.push(sql`${column("labels")} @> ${textArray([...new Set(filter.labels)])}`);
  if (filter.from) {
    parts.push(
      sql`lower(${column("from_address")} || ' ' || coalesce(${column("from_name")}, '')) LIKE ${contains(filter.from)}`,
    );
  }
  if (filter.to) parts.push(sql`${column("recipient_text")} LIKE ${contains(filter.to)}`);
  if (filter.subject) parts.push(sql`lower(${column("subject")}) LIKE ${contains(filter.subject)}`);
  if (filter.since) parts.push(sql`${column("created_at")} >= ${filter.since}`);
  if (filter.until) parts.push(sql`${column("created_at")} < ${filter.until}`);
  if (filter.hasAttachments !== undefined)
    parts.push(sql`${column("has_attachments")} = ${filter.hasAttachments}`);
  // A literal, as the partial index of the unauthenticated is written, so any plan can use it.
  if (filter.authenticated !== undefined)
    parts.push(sql`${column("authenticated")} = ${sql.lit(filter.authenticated)}`);
  return parts;
}
