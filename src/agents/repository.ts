// Agent sign-ups: SQL only. A sign-up is found by its human's email (the global lookup) or by its own
// organization; sign-up acts for the system, verification for the agent's organization.
import { sql } from "kysely";
import type { Db } from "../db/database.ts";

/** The sign-up of a human's email with its organization's status, locked for the transaction. */
export async function lockedSignupByHumanEmail(trx: Db, humanEmail: string) {
  return trx
    .selectFrom("agent_signup_emails as e")
    .innerJoin("agent_signups as s", (join) =>
      join.onRef("s.org_id", "=", "e.org_id").onRef("s.id", "=", "e.agent_signup_id"),
    )
    .innerJoin("organizations as o", "o.id", "s.org_id")
    .select(["s.org_id", "s.id", "s.inbox_id", "s.api_key_id", "s.otp_expires_at", "o.status"])
    .where("e.human_email", "=", humanEmail)
    .forUpdate()
    .executeTakeFirst();
}

export async function signupOfOrganization(db: Db, orgId: string) {
  return db.selectFrom("agent_signups").selectAll().where("org_id", "=", orgId).executeTakeFirst();
}

export interface NewSignup {
  orgId: string;
  humanEmail: string;
  username: string;
  inboxId: string;
  apiKeyId: string;
  otpHash: string;
  otpExpiresAt: Date;
}

/** A sign-up and the global lookup of its human's email (a second sign-up for it is a unique violation). */
export async function insertSignup(trx: Db, signup: NewSignup): Promise<string> {
  const row = await trx
    .insertInto("agent_signups")
    .values({
      org_id: signup.orgId,
      human_email: signup.humanEmail,
      username: signup.username,
      inbox_id: signup.inboxId,
      api_key_id: signup.apiKeyId,
      otp_hash: signup.otpHash,
      otp_expires_at: signup.otpExpiresAt,
    })
    .returning("id")
    .executeTakeFirstOrThrow();
  await trx
    .insertInto("agent_signup_emails")
    .values({ human_email: signup.humanEmail, org_id: signup.orgId, agent_signup_id: row.id })
    .execute();
  return row.id;
}

export interface SignupChanges {
  apiKeyId?: string;
  /** A new code: its hash and expiry; the attempts start again. */
  otp?: { hash: string; expiresAt: Date };
  /** The code can no longer be used (expired now, or spent on a successful verification). */
  otpSpent?: { at: Date };
  verifiedAt?: Date;
}

export async function updateSignup(db: Db, orgId: string, id: string, changes: SignupChanges, now: Date) {
  await db
    .updateTable("agent_signups")
    .set({
      ...(changes.apiKeyId !== undefined ? { api_key_id: changes.apiKeyId } : {}),
      ...(changes.otp
        ? { otp_hash: changes.otp.hash, otp_expires_at: changes.otp.expiresAt, otp_attempts: 0 }
        : {}),
      ...(changes.otpSpent ? { otp_expires_at: changes.otpSpent.at } : {}),
      ...(changes.verifiedAt
        ? { verified_at: changes.verifiedAt, otp_hash: null, otp_expires_at: null }
        : {}),
      updated_at: now,
    })
    .where("org_id", "=", orgId)
    .where("id", "=", id)
    .execute();
}

/**
 * Counts one verification attempt unless `max` are used up; the attempts counted so far, or undefined
 * when none was left. Counted before the code is checked, so parallel guesses cannot exceed `max`.
 */
export async function countAttempt(db: Db, orgId: string, id: string, max: number, now: Date) {
  const row = await db
    .updateTable("agent_signups")
    .set({ otp_attempts: sql`otp_attempts + 1`, updated_at: now })
    .where("org_id", "=", orgId)
    .where("id", "=", id)
    .where("otp_attempts", "<", max)
    .returning("otp_attempts")
    .executeTakeFirst();
  return row?.otp_attempts;
}
