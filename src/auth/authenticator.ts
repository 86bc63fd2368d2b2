// Turns a Bearer key or a session cookie into a Principal, with an in-process cache that every node
// invalidates through LISTEN/NOTIFY, so a deleted key is refused everywhere on its next request.
import { EventEmitter } from "node:events";
import { sql } from "kysely";
import { LRUCache } from "lru-cache";
import type { Db } from "../db/database.ts";
import type { PgListener } from "../db/listener.ts";
import type { Logger } from "../logger.ts";
import { hashToken, isWellFormedApiKey } from "./keys.ts";
import {
  effectivePermissions,
  type KeyScope,
  type OrganizationStatus,
  type Permission,
  permissionFromFlag,
  type Role,
} from "./permissions.ts";
import {
  type ApiKeyPrincipal,
  type AuthenticatedPrincipal,
  isExpired,
  type SessionPrincipal,
} from "./principal.ts";

export const AUTH_CHANNEL = "mailroom_auth";

/** What a NOTIFY on the auth channel says: these credentials changed, forget them. */
export type AuthInvalidation =
  | { kind: "apiKey"; orgId: string; id: string }
  | { kind: "session"; orgId: string; id: string }
  | { kind: "organization"; orgId: string };

/** Whether a change concerns this principal; orgId "*" (a lost LISTEN connection) concerns everyone. */
export function concerns(change: AuthInvalidation, principal: AuthenticatedPrincipal): boolean {
  if (change.orgId !== "*" && change.orgId !== principal.orgId) return false;
  return (
    change.kind === "organization" ||
    (change.kind === "apiKey" && principal.kind === "apiKey" && principal.apiKeyId === change.id) ||
    (change.kind === "session" && principal.kind === "session" && principal.sessionId === change.id)
  );
}

/** Sends an invalidation inside the caller's transaction: delivered to every node iff it commits. */
export async function notifyAuthChange(trx: Db, change: AuthInvalidation): Promise<void> {
  await sql`SELECT pg_notify(${AUTH_CHANNEL}, ${JSON.stringify(change)})`.execute(trx);
}

const SESSION_COOKIE_MAX_TOKEN = 128;
const LAST_USED_INTERVAL_MS = 60_000;

export interface AuthenticatorOptions {
  pepper?: string | undefined;
  logger?: Logger | undefined;
  /** The backstop: even without a notification, a cached credential is re-read after this long. */
  cacheTtlMs?: number;
  cacheMax?: number;
}

export class Authenticator extends EventEmitter<{ revoked: [AuthInvalidation] }> {
  private readonly cache: LRUCache<string, AuthenticatedPrincipal>;
  private readonly lastUsedWrites = new Map<string, number>();
  private readonly pepper: string | undefined;
  private readonly logger: Logger | undefined;

  constructor(
    private readonly db: Db,
    options: AuthenticatorOptions = {},
  ) {
    super();
    // Every open subscription listens for revocations: thousands of listeners are expected.
    this.setMaxListeners(0);
    this.pepper = options.pepper;
    this.logger = options.logger;
    this.cache = new LRUCache({ max: options.cacheMax ?? 10_000, ttl: options.cacheTtlMs ?? 30_000 });
  }

  /** Subscribes to invalidations from every node; after a lost connection the whole cache is dropped. */
  async attach(listener: PgListener): Promise<void> {
    await listener.listen(AUTH_CHANNEL, (payload) => {
      try {
        this.invalidate(JSON.parse(payload) as AuthInvalidation);
      } catch {
        this.cache.clear();
      }
    });
    listener.on("reconnected", () => {
      this.cache.clear();
      this.emit("revoked", { kind: "organization", orgId: "*" });
    });
  }

  invalidate(change: AuthInvalidation): void {
    for (const [token, principal] of this.cache.entries()) {
      if (concerns(change, principal)) this.cache.delete(token);
    }
    this.emit("revoked", change);
  }

  /** `null` for every failure (malformed, unknown, deleted, expired): the caller answers 401 alike. */
  async authenticateApiKey(key: string): Promise<ApiKeyPrincipal | null> {
    if (!isWellFormedApiKey(key)) return null;
    const hash = hashToken(key, this.pepper);
    const cacheKey = `k:${hash.toString("base64")}`;
    let principal = this.cache.get(cacheKey) as ApiKeyPrincipal | undefined;
    if (!principal) {
      principal = await this.loadApiKey((query) =>
        query
          .innerJoin("api_key_hashes as h", (join) =>
            join.onRef("h.org_id", "=", "k.org_id").onRef("h.api_key_id", "=", "k.id"),
          )
          .where("h.key_hash", "=", hash),
      );
      if (!principal) return null;
      this.cache.set(cacheKey, principal);
    }
    if (isExpired(principal)) return null;
    this.touch(principal);
    return principal;
  }

  async authenticateSession(token: string): Promise<SessionPrincipal | null> {
    if (token.length === 0 || token.length > SESSION_COOKIE_MAX_TOKEN) return null;
    const hash = hashToken(token, this.pepper);
    const cacheKey = `s:${hash.toString("base64")}`;
    let principal = this.cache.get(cacheKey) as SessionPrincipal | undefined;
    if (!principal) {
      principal = await this.loadSession((query) =>
        query
          .innerJoin("session_tokens as t", (join) =>
            join.onRef("t.org_id", "=", "s.org_id").onRef("t.session_id", "=", "s.id"),
          )
          .where("t.token_hash", "=", hash),
      );
      if (!principal) return null;
      this.cache.set(cacheKey, principal);
    }
    return isExpired(principal) ? null : principal;
  }

  /** Re-reads a principal by its id, bypassing the cache: null when it is gone or expired. */
  async refresh(principal: AuthenticatedPrincipal): Promise<AuthenticatedPrincipal | null> {
    return this.byId(
      principal.kind === "apiKey"
        ? { kind: "apiKey", orgId: principal.orgId, id: principal.apiKeyId }
        : { kind: "session", orgId: principal.orgId, id: principal.sessionId },
    );
  }

  /**
   * A credential as it is now, read by its id (not its secret) and bypassing the cache: null when it
   * is gone or expired. For what acts later on a credential's behalf (a download link it minted).
   */
  async byId(credential: {
    kind: AuthenticatedPrincipal["kind"];
    orgId: string;
    id: string;
  }): Promise<AuthenticatedPrincipal | null> {
    const { orgId, id } = credential;
    const fresh =
      credential.kind === "apiKey"
        ? await this.loadApiKey((query) => query.where("k.org_id", "=", orgId).where("k.id", "=", id))
        : await this.loadSession((query) => query.where("s.org_id", "=", orgId).where("s.id", "=", id));
    return fresh && !isExpired(fresh) ? fresh : null;
  }

  private apiKeyQuery() {
    return this.db
      .selectFrom("api_keys as k")
      .innerJoin("organizations as o", "o.id", "k.org_id")
      .select([
        "k.org_id",
        "k.id",
        "k.scope",
        "k.pod_id",
        "k.inbox_id",
        "k.permissions",
        "k.expires_at",
        "k.allowed_ips",
        "k.send_requires_approval",
        "o.status as organization_status",
      ]);
  }

  private async loadApiKey(
    narrow: (query: ReturnType<Authenticator["apiKeyQuery"]>) => ReturnType<Authenticator["apiKeyQuery"]>,
  ): Promise<ApiKeyPrincipal | undefined> {
    const row = await narrow(this.apiKeyQuery()).executeTakeFirst();
    if (!row) return undefined;
    const whitelist =
      row.permissions === null
        ? null
        : row.permissions.map(permissionFromFlag).filter((p): p is Permission => p !== undefined);
    const organizationStatus = row.organization_status as OrganizationStatus;
    const scope = row.scope as KeyScope;
    return {
      kind: "apiKey",
      apiKeyId: row.id,
      orgId: row.org_id,
      organizationStatus,
      scope,
      podId: row.pod_id,
      inboxId: row.inbox_id,
      whitelist,
      permissions: effectivePermissions({ scope, whitelist, organizationStatus }),
      expiresAt: row.expires_at,
      allowedIps: row.allowed_ips,
      sendRequiresApproval: row.send_requires_approval,
    };
  }

  private sessionQuery() {
    return this.db
      .selectFrom("sessions as s")
      .innerJoin("memberships as m", (join) =>
        join.onRef("m.org_id", "=", "s.org_id").onRef("m.user_id", "=", "s.user_id"),
      )
      .innerJoin("organizations as o", "o.id", "s.org_id")
      .select(["s.org_id", "s.id", "s.user_id", "s.expires_at", "m.role", "o.status as organization_status"]);
  }

  private async loadSession(
    narrow: (query: ReturnType<Authenticator["sessionQuery"]>) => ReturnType<Authenticator["sessionQuery"]>,
  ): Promise<SessionPrincipal | undefined> {
    const row = await narrow(this.sessionQuery()).executeTakeFirst();
    if (!row) return undefined;
    const organizationStatus = row.organization_status as OrganizationStatus;
    const role = row.role as Role;
    return {
      kind: "session",
      sessionId: row.id,
      userId: row.user_id,
      role,
      orgId: row.org_id,
      organizationStatus,
      scope: "ORGANIZATION",
      podId: null,
      inboxId: null,
      permissions: effectivePermissions({ scope: "ORGANIZATION", whitelist: null, organizationStatus, role }),
      expiresAt: row.expires_at,
      allowedIps: null,
      sendRequiresApproval: false,
    };
  }

  /** `lastUsedAt` at most once a minute per key, never on the request path. */
  private touch(principal: ApiKeyPrincipal): void {
    const now = Date.now();
    const last = this.lastUsedWrites.get(principal.apiKeyId) ?? 0;
    if (now - last < LAST_USED_INTERVAL_MS) return;
    this.lastUsedWrites.set(principal.apiKeyId, now);
    if (this.lastUsedWrites.size > 50_000) this.lastUsedWrites.clear();
    setImmediate(() => {
      this.db
        .updateTable("api_keys")
        .set({ last_used_at: sql`now()` })
        .where("org_id", "=", principal.orgId)
        .where("id", "=", principal.apiKeyId)
        // Other nodes may have written it within the minute; one write per minute cluster-wide.
        .where((eb) =>
          eb.or([
            eb("last_used_at", "is", null),
            eb("last_used_at", "<", sql<Date>`now() - interval '1 minute'`),
          ]),
        )
        .execute()
        .catch((error: unknown) => this.logger?.warn({ err: error }, "could not record lastUsedAt"));
    });
  }
}
