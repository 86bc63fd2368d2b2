// People who sign in: argon2 password hashes, opaque session tokens stored hashed.
import { hash as argon2Hash, verify as argon2Verify } from "@node-rs/argon2";
import { notifyAuthChange } from "../auth/authenticator.ts";
import { generateSessionToken, hashToken } from "../auth/keys.ts";
import type { Role } from "../auth/permissions.ts";
import type { SessionPrincipal } from "../auth/principal.ts";
import type { Db } from "../db/database.ts";
import { badUserInput } from "../errors.ts";
import type { Services } from "../services.ts";
import {
  deleteSession,
  insertMembership,
  insertSession,
  upsertUser,
  userById,
  userForSignIn,
} from "./repository.ts";

export const SESSION_TTL_MS = 14 * 24 * 60 * 60 * 1000;
const MIN_PASSWORD_LENGTH = 10;

// Verified when the email is unknown, so a wrong email costs the same time as a wrong password.
const DUMMY_HASH = await argon2Hash("mailroom-timing-equaliser");

export interface User {
  id: string;
  email: string;
  role: Role;
  created_at: Date;
}

export function normaliseEmail(email: string): string {
  return email.trim().toLowerCase();
}

export async function hashPassword(password: string): Promise<string> {
  if (password.length < MIN_PASSWORD_LENGTH) {
    throw badUserInput(`password must be at least ${MIN_PASSWORD_LENGTH} characters.`, "password");
  }
  return argon2Hash(password);
}

/** Creates a user (or reuses one with that email) and makes it a member of the organization. */
export async function addMember(trx: Db, orgId: string, email: string, passwordHash: string, role: Role) {
  const user = await upsertUser(trx, normaliseEmail(email), passwordHash);
  await insertMembership(trx, orgId, user.id, role);
  return user;
}

export async function login(
  services: Services,
  email: string,
  password: string,
): Promise<{ user: User; token: string; orgId: string; expiresAt: Date }> {
  const { db } = services;
  const row = await userForSignIn(db, normaliseEmail(email));
  const valid = await argon2Verify(row?.password_hash ?? DUMMY_HASH, password).catch(() => false);
  if (!row?.password_hash || !valid) throw badUserInput("Invalid email or password.");

  const token = generateSessionToken();
  const expiresAt = new Date(Date.now() + SESSION_TTL_MS);
  await db.transaction().execute((trx) =>
    insertSession(trx, {
      orgId: row.org_id,
      userId: row.id,
      expiresAt,
      tokenHash: hashToken(token, services.config.tokenPepper),
    }),
  );
  return {
    user: { id: row.id, email: row.email, role: row.role, created_at: row.created_at },
    token,
    orgId: row.org_id,
    expiresAt,
  };
}

export async function logout(services: Services, principal: SessionPrincipal): Promise<void> {
  await services.db.transaction().execute(async (trx) => {
    await deleteSession(trx, principal.orgId, principal.sessionId);
    await notifyAuthChange(trx, { kind: "session", orgId: principal.orgId, id: principal.sessionId });
  });
  services.authenticator.invalidate({ kind: "session", orgId: principal.orgId, id: principal.sessionId });
}

export async function userOf(services: Services, principal: SessionPrincipal): Promise<User | undefined> {
  const row = await userById(services.db, principal.userId);
  return row && { ...row, role: principal.role };
}

export function sessionCookie(name: string, token: string, expiresAt: Date, secure: boolean): string {
  const maxAge = Math.max(0, Math.floor((expiresAt.getTime() - Date.now()) / 1000));
  return `${name}=${token}; Path=/; HttpOnly; SameSite=Lax; Max-Age=${maxAge}${secure ? "; Secure" : ""}`;
}

export function clearedCookie(name: string, secure: boolean): string {
  return `${name}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0${secure ? "; Secure" : ""}`;
}
