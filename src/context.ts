// One context for HTTP, SSE and WebSocket operations: who is calling and what they may touch.
import type { Authenticator } from "./auth/authenticator.ts";
import { type Principal, type TenantScope, tenantScopeOf } from "./auth/principal.ts";
import type { Clock } from "./clock.ts";
import type { Config } from "./config.ts";
import type { Db } from "./db/database.ts";
import type { EventBus } from "./events/bus.ts";
import type { RateLimiter } from "./http/rate-limit.ts";
import type { Logger } from "./logger.ts";
import type { IngestQueue } from "./mail/group-commit.ts";

/** Process-wide dependencies, built once by buildApp(). */
export interface Services {
  config: Config;
  db: Db;
  logger: Logger;
  authenticator: Authenticator;
  /** This node's fan-out of committed events to its subscribers. */
  events: EventBus;
  clock: Clock;
  statementCount: () => number;
  /** Request limits (memory, or Redis shared by every node). */
  rateLimiter: RateLimiter;
  /** Inbound mail being stored: messages arriving together share one transaction (group commit). */
  ingestQueue: IngestQueue;
}

export interface Context {
  services: Services;
  principal: Principal;
  /** `null` for anonymous callers, who can reach no tenant data. */
  scope: TenantScope | null;
  /** Set by the HTTP layer so `login`/`logout` can write the session cookie. */
  setCookie?: ((cookie: string) => void) | undefined;
  /** A browser request from an origin that may not use the session cookie (login refuses it). */
  foreignOrigin?: boolean;
  /** Whether the request came over HTTPS (directly or through a proxy), for the cookie's Secure flag. */
  secure?: boolean;
  /** The caller's address, for the per-IP limits of login and sign-up (src/http/rate-limit.ts). */
  clientIp?: string | undefined;
}

export function createContext(
  services: Services,
  principal: Principal,
  extra: Partial<Context> = {},
): Context {
  return {
    ...extra,
    services,
    principal,
    scope: principal.kind === "anonymous" ? null : tenantScopeOf(principal),
  };
}

/** The caller's TenantScope; resolvers of guarded fields run only for authenticated callers. */
export function scopeOf(context: Context): TenantScope {
  if (!context.scope) throw new Error("scopeOf() called for an anonymous caller");
  return context.scope;
}
