// Idempotent sends (docs/sending.md, "Idempotent sends"): a send mutation given an idempotency key
// sends at most once per organization and key within 24 hours. A repeat with the same input gets the
// first call's message back and sends nothing; with another input it fails IDEMPOTENCY_CONFLICT.
// Which of two racing calls sends is decided by the database (claimIdempotencyKey, in the send's
// transaction), never by this process: the loser's transaction rolls back and it answers as a repeat.
import { createHash } from "node:crypto";
import { GraphQLError } from "graphql";
import type { TenantScope } from "../auth/principal.ts";
import { badUserInput, notFound } from "../errors.ts";
import { type Message, messagesByIds } from "../mail/repository.ts";
import type { Services } from "../services.ts";
import { approvalRequired } from "./approval.ts";
import { findIdempotencyKey, purgeExpiredIdempotencyKeys } from "./idempotency-repository.ts";

export const IDEMPOTENCY_TTL_SECONDS = 24 * 60 * 60;
export const MAX_IDEMPOTENCY_KEY_LENGTH = 255;
/** Printable ASCII, space included: what an HTTP header carries safely. */
const KEY_PATTERN = /^[\x20-\x7e]+$/;

export const PURGE_IDEMPOTENCY_KEYS = "purge-idempotency-keys";
/** graphile-worker crontab line: every hour, at minute 17. */
export const PURGE_IDEMPOTENCY_KEYS_CRONTAB = `17 * * * * ${PURGE_IDEMPOTENCY_KEYS}`;

/** The send mutations that take an idempotency key. */
export type SendOperation =
  | "sendMessage"
  | "replyToMessage"
  | "forwardMessage"
  | "sendDraft"
  | "approveDraft";

export interface Idempotency {
  key: string;
  operation: SendOperation;
  /** SHA-256 of the operation and its normalised input. */
  hash: Buffer;
}

/** Thrown inside the send's transaction when another call holds the key: the transaction rolls back. */
export class IdempotencyKeyTaken extends Error {
  constructor() {
    super("the idempotency key was used by a concurrent call");
  }
}

export function idempotencyConflict(): GraphQLError {
  return new GraphQLError("This idempotency key was used within the last 24 hours with a different input.", {
    extensions: { code: "IDEMPOTENCY_CONFLICT", field: "idempotencyKey" },
  });
}

/** A checked key (BAD_USER_INPUT naming idempotencyKey), or undefined when none was given. */
export function checkedKey(key: string | null | undefined): string | undefined {
  if (key == null) return undefined;
  if (key.length < 1 || key.length > MAX_IDEMPOTENCY_KEY_LENGTH || !KEY_PATTERN.test(key)) {
    throw badUserInput(
      `idempotencyKey must be 1 to ${MAX_IDEMPOTENCY_KEY_LENGTH} printable ASCII characters.`,
      "idempotencyKey",
    );
  }
  return key;
}

/**
 * The idempotency of one send: `input` as the service received it (ids decoded), without the key.
 * Normalised: absent and null fields are one, object keys are sorted, text is taken as given.
 */
export function idempotencyOf(
  operation: SendOperation,
  key: string | null | undefined,
  input: object,
): Idempotency | undefined {
  const checked = checkedKey(key);
  if (checked === undefined) return undefined;
  const { idempotencyKey: _ignored, ...rest } = input as Record<string, unknown>;
  const hash = createHash("sha256").update(operation).update("\n").update(canonicalJson(rest)).digest();
  return { key: checked, operation, hash };
}

function canonicalJson(value: unknown): string {
  if (value === null || value === undefined) return "null";
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (typeof value === "object") {
    const fields = Object.entries(value as Record<string, unknown>)
      .filter(([, field]) => field !== null && field !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${fields.map(([name, field]) => `${JSON.stringify(name)}:${canonicalJson(field)}`).join(",")}}`;
  }
  return JSON.stringify(value);
}

/**
 * The first call's message when `idempotency`'s key was used within 24 hours with the same input;
 * IDEMPOTENCY_CONFLICT with another; undefined when the key is free. A first call that was held for
 * approval is answered as it was, APPROVAL_REQUIRED with the same draft, until that draft is sent.
 */
async function replayed(
  services: Pick<Services, "db">,
  scope: TenantScope,
  idempotency: Idempotency,
): Promise<Message | undefined> {
  const record = await findIdempotencyKey(services.db, scope, idempotency.key);
  if (!record) return undefined;
  if (record.operation !== idempotency.operation || !record.request_hash.equals(idempotency.hash)) {
    throw idempotencyConflict();
  }
  if (record.message_id === null) {
    if (record.draft_id === null) throw new Error("an idempotency record without a payload");
    throw approvalRequired(record.draft_id);
  }
  // Through the caller's scope: a key shared across pods returns nothing the caller cannot see.
  const [message] = await messagesByIds(services.db, scope, [record.message_id]);
  if (!message) throw notFound("Message");
  return message;
}

/**
 * Runs `send` once per key: a repeat answers from the record before any check or work; a call that
 * loses a race (its claim finds the key taken, or it failed because the winner consumed what it
 * needed, such as the draft) answers as a repeat once the winner has committed.
 */
export async function idempotently(
  services: Pick<Services, "db">,
  scope: TenantScope,
  idempotency: Idempotency | undefined,
  send: () => Promise<Message>,
): Promise<Message> {
  if (!idempotency) return send();
  const earlier = await replayed(services, scope, idempotency);
  if (earlier) return earlier;
  try {
    return await send();
  } catch (error) {
    if (error instanceof GraphQLError && error.extensions.code === "IDEMPOTENCY_CONFLICT") throw error;
    const winner = await replayed(services, scope, idempotency);
    if (winner) return winner;
    if (error instanceof IdempotencyKeyTaken) throw idempotencyConflict();
    throw error;
  }
}

/** The purge job: deletes expired keys (the task of PURGE_IDEMPOTENCY_KEYS_CRONTAB). */
export async function purgeIdempotencyKeys(services: Pick<Services, "db" | "logger">): Promise<void> {
  const deleted = await purgeExpiredIdempotencyKeys(services.db);
  if (deleted > 0) services.logger.info({ deleted }, "expired idempotency keys purged");
}
