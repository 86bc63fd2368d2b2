// The content digest that tells a retried delivery from a different message carrying the same
// Message-ID (docs/mail.md, "Duplicate detection and the content digest"). It covers what the
// message says and to whom, not how it travelled: a sender's retry and a copy re-sent by another
// MTA (new trace headers, headers folded anew, the body re-encoded) get the same digest; any change
// a reader could see (sender, recipients, subject, date, text, HTML, an attachment) gets another.
import { createHash, type Hash } from "node:crypto";

/** The decoded content of a message that the MIME parser could read. */
export interface DigestBody {
  text: string | null;
  html: string | null;
  attachments: readonly { filename: string | null; contentType: string; content: Buffer }[];
}

/**
 * The header fields a digest covers, in this order. Everything else is left out on purpose: trace
 * fields (Received, Return-Path, Delivered-To, Authentication-Results, ARC-*, DKIM-Signature, X-*)
 * are added or rewritten on the way, and the MIME structure (boundaries, transfer encodings) is
 * covered by the decoded body instead. Bcc is left out too: a submission server strips it.
 */
const DIGEST_HEADERS = [
  "from",
  "sender",
  "reply-to",
  "to",
  "cc",
  "subject",
  "date",
  "message-id",
  "in-reply-to",
  "references",
] as const;

/** A definition change must not match digests stored under the previous one. */
const VERSION = "mailroom content digest 1";

/** Header blocks are read this far at most (the same bound as the spam verdict's reading). */
const MAX_HEADER_BYTES = 256 * 1024;

export const DIGEST_BYTES = 32;

/**
 * SHA-256 over the content header fields of `raw` (unfolded, whitespace runs as one space, names
 * lower-case, grouped by name in a fixed order) and over `body`, the decoded content; for a message
 * the parser could not read (`body` null), over the raw body instead. Text and HTML are compared
 * the way relays may rewrite them: line ends, whitespace at the end of a line and empty lines at
 * the end do not count. Attachments count by type, name and exact decoded bytes, in order.
 */
export function contentDigest(raw: Buffer, body: DigestBody | null): Buffer {
  const hash = createHash("sha256");
  field(hash, "version", VERSION);
  const { headers, rawBody } = split(raw);
  for (const name of DIGEST_HEADERS) {
    for (const value of headers.get(name) ?? []) field(hash, `header ${name}`, value);
  }
  if (body === null) {
    field(hash, "raw body", relaxedBody(rawBody.toString("latin1")));
  } else {
    field(hash, "text", body.text === null ? null : relaxedBody(body.text));
    field(hash, "html", body.html === null ? null : relaxedBody(body.html));
    for (const attachment of body.attachments) {
      field(hash, "attachment type", attachment.contentType.toLowerCase());
      field(hash, "attachment name", attachment.filename);
      field(hash, "attachment content", createHash("sha256").update(attachment.content).digest());
    }
  }
  return hash.digest();
}

/** Length-prefixed, so that no two different sequences of fields hash the same bytes. */
function field(hash: Hash, tag: string, value: string | Buffer | null): void {
  const bytes = value === null ? null : Buffer.isBuffer(value) ? value : Buffer.from(value, "utf8");
  const head = Buffer.alloc(4);
  head.writeUInt32BE(bytes === null ? 0xffffffff : bytes.length);
  hash.update(`${tag}\n`);
  hash.update(head);
  if (bytes) hash.update(bytes);
}

/** The digest's header fields by lower-case name, values relaxed; and the raw body. */
function split(raw: Buffer): { headers: Map<string, string[]>; rawBody: Buffer } {
  // latin1 keeps every byte as one character: an 8-bit header hashes as the bytes it was.
  const head = raw.subarray(0, Math.min(raw.length, MAX_HEADER_BYTES)).toString("latin1");
  const end = /\r?\n\r?\n/.exec(head);
  const block = end ? head.slice(0, end.index) : head;
  const rawBody = end ? raw.subarray(end.index + end[0].length) : Buffer.alloc(0);
  const wanted = new Set<string>(DIGEST_HEADERS);
  const headers = new Map<string, string[]>();
  for (const line of block.replace(/\r?\n(?=[ \t])/g, "").split(/\r?\n/)) {
    const colon = line.indexOf(":");
    if (colon <= 0) continue;
    const name = line.slice(0, colon).trim().toLowerCase();
    if (!wanted.has(name)) continue;
    const values = headers.get(name) ?? [];
    values.push(
      line
        .slice(colon + 1)
        .replace(/[ \t]+/g, " ")
        .trim(),
    );
    headers.set(name, values);
  }
  return { headers, rawBody };
}

/** Lines without trailing whitespace, joined by LF, without empty lines at the end. */
function relaxedBody(text: string): string {
  return text
    .split(/\r\n|\r|\n/)
    .map((line) => line.replace(/[ \t]+$/, ""))
    .join("\n")
    .replace(/\n+$/, "");
}
