// The header block of a raw message, read straight from its bytes: every field in order, its name as
// written and its value unfolded. It serves both what a message shows (Message.headers) and what the
// ingest looks for (spam verdicts), even in a message the MIME parser cannot make sense of.

/** At most this much of a message is read for its header block: a header block is never larger. */
const HEADER_BLOCK_BYTES = 256 * 1024;
/** At most this many fields are kept: a hostile message can carry thousands. */
const MAX_FIELDS = 1000;

export type HeaderField = [name: string, value: string];

/** The fields of the header block of `raw`, in order (values unfolded, decoded as UTF-8). */
export function headerFields(raw: Buffer): HeaderField[] {
  // PostgreSQL text holds no NUL: a malformed message's header block loses them, as its body does.
  const head = raw
    .subarray(0, Math.min(raw.length, HEADER_BLOCK_BYTES))
    .toString("utf8")
    .replaceAll("\u0000", "");
  const end = head.search(/\r?\n\r?\n/);
  const block = end === -1 ? head : head.slice(0, end);
  const fields: HeaderField[] = [];
  // Unfolding removes the line break before a continuation's whitespace (RFC 5322, 2.2.3).
  for (const line of block.replace(/\r?\n(?=[ \t])/g, "").split(/\r?\n/)) {
    const colon = line.indexOf(":");
    if (colon <= 0) continue;
    fields.push([line.slice(0, colon).trim(), line.slice(colon + 1).trim()]);
    if (fields.length === MAX_FIELDS) break;
  }
  return fields;
}

/** The values of every field named `name` (any case). */
export function headerValues(raw: Buffer, name: string): string[] {
  const wanted = name.toLowerCase();
  return headerFields(raw)
    .filter(([field]) => field.toLowerCase() === wanted)
    .map(([, value]) => value);
}
