// What one response may carry of the heavy fields (attachment content, message and draft bodies).
// Each is counted from a size known before its bytes are read, so what is refused is never loaded,
// and the rest of the response survives: the refused field alone is null, with its error. Limits and
// what a client sees: docs/limits.md.
import type DataLoader from "dataloader";
import { badUserInput } from "../errors.ts";
import type { Context } from "./context.ts";

export type HeavyContent = "attachments" | "bodies";

/** The end of each refusal says what to do instead; a way around the limit extends it, not replaces it. */
const REFUSAL: Record<HeavyContent, string> = {
  attachments:
    "this response would carry more attachment content than one response may; download it from the attachment's downloadUrl, or fetch fewer attachments per request.",
  bodies:
    "this response would carry more body text (text and html) than one response may; fetch fewer bodies per request.",
};

interface Allowance {
  /** Bytes granted so far. */
  spent: number;
}

type Budget = Record<HeavyContent, Allowance>;

/** Per context, like its loaders; a subscription's context starts a new one for each event. */
const budgets = new WeakMap<Context, Budget>();

function budgetOf(context: Context): Budget {
  let budget = budgets.get(context);
  if (!budget) {
    budget = { attachments: { spent: 0 }, bodies: { spent: 0 } };
    budgets.set(context, budget);
  }
  return budget;
}

/**
 * Counts `bytes` of `kind` against this response's allowance, or throws the refusal of `field`
 * (BAD_USER_INPUT naming it). Called by each field before it reads its bytes, in the order the
 * executor meets the fields, which for a list is its order: the first fields of a response are
 * served, the later ones refused. Every occurrence counts, aliases included, as each is written out.
 *
 * Attachments stop at MAX_INLINE_ATTACHMENT_BYTES. Bodies have no other way to be read, so the first
 * body of a response is served however long: every message stays readable on its own, and a response
 * holds at most one body beyond MAX_INLINE_BODY_BYTES.
 */
export function reserve(context: Context, kind: HeavyContent, bytes: number, field: string): void {
  if (bytes <= 0) return;
  const allowance = budgetOf(context)[kind];
  const { config } = context.services;
  const limit = kind === "attachments" ? config.maxInlineAttachmentBytes : config.maxInlineBodyBytes;
  const fits = allowance.spent + bytes <= limit || (kind === "bodies" && allowance.spent === 0);
  if (!fits) throw badUserInput(`${field}: ${REFUSAL[kind]}`, field);
  allowance.spent += bytes;
}

/** A long-lived context (a subscription) starting its next response. */
export function resetResponseBudget(context: Context): void {
  budgets.delete(context);
}

/** What the description of a body field says about the limit. */
export const BODY_LIMIT =
  "Null, with a BAD_USER_INPUT error on this field, when it would take the response past the body text " +
  "one response may carry (MAX_INLINE_BODY_BYTES, 10 MiB by default): fetch fewer bodies per request. " +
  "The first body of a response is always served, so a body asked for alone can always be read.";

export type BodyColumn = "text_body" | "html_body";

/** A row with bodies (a message, a draft): each body either whole, or its size in bytes. */
export interface BodiesOrSizes {
  id: string;
  text_body?: string | null;
  html_body?: string | null;
  text_body_bytes?: number | null;
  html_body_bytes?: number | null;
}

/** Reads bodies by (row id, column): one statement for every body of a response that fits. */
export type BodyLoader = DataLoader<{ id: string; body: BodyColumn }, string | null>;

/**
 * The resolver of a `text` or `html` field. A row read whole (just written) holds the body already;
 * otherwise it holds the body's size, read with the row, and the body is read only if it fits.
 */
export function budgetedBody(
  body: "text" | "html",
  loader: (context: Context) => BodyLoader,
  field: string = body,
) {
  const column: BodyColumn = `${body}_body`;
  const sizeColumn = `${body}_body_bytes` as const;
  return async (row: BodiesOrSizes, _args: unknown, context: Context): Promise<string | null> => {
    const whole = row[column];
    if (whole !== undefined) {
      // Already in memory, but written out it still counts.
      if (whole !== null) reserve(context, "bodies", Buffer.byteLength(whole), field);
      return whole;
    }
    const bytes = row[sizeColumn];
    // Reading the body to learn its size would be the unbounded read this module exists to prevent.
    if (bytes === undefined) throw new Error(`${field}: the row was read with neither the body nor its size`);
    if (bytes === null) return null;
    reserve(context, "bodies", bytes, field);
    return loader(context).load({ id: row.id, body: column });
  };
}

/** The options of a `text` or `html` field: nullable, described with the limit, resolved within it. */
export function bodyField(field: "text" | "html", loader: (context: Context) => BodyLoader) {
  const what = field === "text" ? "The plain-text body." : "The HTML body.";
  return {
    nullable: true,
    description: `${what} ${BODY_LIMIT}`,
    resolve: budgetedBody(field, loader),
  } as const;
}
