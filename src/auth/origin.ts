// Which browser pages may use the session cookie: the server's own, and those in CORS_ORIGINS
// (docs/permissions.md, "Browsers").
import { GraphQLError } from "graphql";

/**
 * The origin of this server as the browser that loaded our pages sees it: the scheme (the proxy's, when
 * one says it terminated TLS) and the Host the request was sent to.
 */
function ownOrigin(request: Request): string {
  const url = new URL(request.url);
  const forwarded = request.headers.get("x-forwarded-proto")?.split(",")[0]?.trim();
  const scheme = forwarded === "https" || forwarded === "http" ? `${forwarded}:` : url.protocol;
  return `${scheme}//${url.host}`;
}

/**
 * Whether a request may use (or set) the session cookie: it comes from no browser page (no Origin),
 * from the server's own origin, or from one listed in CORS_ORIGINS. A page on another origin of the
 * same site (another port, a sibling subdomain) gets the SameSite=Lax cookie sent along, so the
 * cookie alone proves nothing about who is asking.
 */
export function originMayUseSession(request: Request, allowed: readonly string[]): boolean {
  const origin = request.headers.get("origin");
  return origin === null || origin === ownOrigin(request) || allowed.includes(origin);
}

export const FOREIGN_ORIGIN_MESSAGE =
  "The session cookie works only on this server's own pages: call from another origin with a Bearer token, or list the origin in CORS_ORIGINS.";

export function foreignOriginError(): GraphQLError {
  return new GraphQLError(FOREIGN_ORIGIN_MESSAGE, {
    extensions: { code: "FORBIDDEN", http: { status: 403 } },
  });
}
