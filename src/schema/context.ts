// One GraphQL context for HTTP, SSE and WebSocket operations: who is calling and what they may touch.
import { type Principal, type TenantScope, tenantScopeOf } from "../auth/principal.ts";
import type { Services } from "../services.ts";
import type { FrameSink } from "./fan-out.ts";

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
  /** The caller's address, for the per-IP limits of login and sign-up (src/auth/rate-limit.ts). */
  clientIp?: string | undefined;
  /**
   * The URL the server is reached at (PUBLIC_URL, or this request's origin), on which download links
   * are built; src/server/base-url.ts.
   */
  baseUrl?: string | undefined;
  /** A graphql-ws subscription's socket: the fan-out writes its frames there (src/schema/fan-out.ts). */
  frames?: FrameSink | undefined;
  /** The request's `Idempotency-Key` header (HTTP only), for a send mutation (src/schema/send.ts). */
  idempotencyKeyHeader?: string | undefined;
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

/** Whether mail the caller sends waits for approval (docs/sending.md, "Approval before sending"). */
export function requiresApprovalOf(context: Context): boolean {
  if (context.principal.kind === "anonymous")
    throw new Error("requiresApprovalOf() called for an anonymous caller");
  return context.principal.sendRequiresApproval;
}
