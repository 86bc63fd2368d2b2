// People and their sessions: SQL only. A person is found by email at sign-in, before any organization
// is known, so these act for the system rather than for a caller's TenantScope.
import { sql } from "kysely";
import type { Role } from "../auth/permissions.ts";
import type { Db } from "../db/database.ts";

/** Creates a user, or gives an existing one with that (normalised) email this password. */
export async function upsertUser(trx: Db, email: string, passwordHash: string) {
  return trx
    .insertInto("users")
    .values({ email, password_hash: passwordHash })
    .onConflict((oc) =>
      oc.column("email").doUpdateSet({ password_hash: passwordHash, updated_at: sql`now()` }),
    )
    .returning(["id", "email", "created_at"])
    .executeTakeFirstOrThrow();
}

export async function insertMembership(trx: Db, orgId: string, userId: string, role: Role): Promise<void> {
  await trx.insertInto("memberships").values({ org_id: orgId, user_id: userId, role }).execute();
}

/** The user with this email and its first membership: who signs in, and into which organization. */
export async function userForSignIn(db: Db, email: string) {
  return db
    .selectFrom("users as u")
    .innerJoin("memberships as m", "m.user_id", "u.id")
    .select(["u.id", "u.email", "u.password_hash", "u.created_at", "m.org_id", "m.role"])
    .where("u.email", "=", email)
    .orderBy("m.org_id")
    .limit(1)
    .executeTakeFirst();
}

/** A new session and the global lookup of its token's hash. */
export async function insertSession(
  trx: Db,
  session: { orgId: string; userId: string; expiresAt: Date; tokenHash: Buffer },
): Promise<string> {
  const row = await trx
    .insertInto("sessions")
    .values({ org_id: session.orgId, user_id: session.userId, expires_at: session.expiresAt })
    .returning(["id"])
    .executeTakeFirstOrThrow();
  await trx
    .insertInto("session_tokens")
    .values({ token_hash: session.tokenHash, org_id: session.orgId, session_id: row.id })
    .execute();
  return row.id;
}

export async function deleteSession(trx: Db, orgId: string, sessionId: string): Promise<void> {
  await trx.deleteFrom("sessions").where("org_id", "=", orgId).where("id", "=", sessionId).execute();
}

export async function userById(db: Db, id: string) {
  return db.selectFrom("users").select(["id", "email", "created_at"]).where("id", "=", id).executeTakeFirst();
}
