// Credentials on the wire: the Bearer header, the session cookie, the graphql-ws connection_init
// payload; and the rule that anonymous callers reach only public fields.

import { useCSRFPrevention } from "@graphql-yoga/plugin-csrf-prevention";
import {
  type DocumentNode,
  type FragmentDefinitionNode,
  GraphQLError,
  Kind,
  type OperationDefinitionNode,
  type SelectionSetNode,
} from "graphql";
import type { Plugin } from "graphql-yoga";
import { unauthenticated } from "../errors.ts";
import type { Authenticator } from "./authenticator.ts";
import { ANONYMOUS, type Principal } from "./principal.ts";

export const SESSION_COOKIE = "mailroom_session";

/** Root fields anyone may call. Introspection (`__schema`, `__type`, `__typename`) is public too. */
export const PUBLIC_ROOT_FIELDS: ReadonlySet<string> = new Set(["login", "agentSignUp"]);

export class InvalidCredential extends Error {
  override name = "InvalidCredential";
}

export function readCookie(header: string | null | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(";")) {
    const index = part.indexOf("=");
    if (index === -1) continue;
    if (part.slice(0, index).trim() === name) {
      try {
        return decodeURIComponent(part.slice(index + 1).trim());
      } catch {
        return part.slice(index + 1).trim();
      }
    }
  }
  return undefined;
}

export interface Credentials {
  authorization?: string | null | undefined;
  sessionToken?: string | undefined;
}

/**
 * Resolves the caller. No credential: anonymous. A credential that is present but malformed,
 * unknown, deleted or expired: InvalidCredential, whatever the cause, so failures are not an oracle.
 * A Bearer header wins over a cookie.
 */
export async function resolvePrincipal(
  authenticator: Authenticator,
  credentials: Credentials,
): Promise<Principal> {
  const { authorization, sessionToken } = credentials;
  if (authorization !== undefined && authorization !== null) {
    const match = /^Bearer +(\S+) *$/i.exec(authorization);
    const principal = match?.[1] ? await authenticator.authenticateApiKey(match[1]) : null;
    if (!principal) throw new InvalidCredential();
    return principal;
  }
  if (sessionToken !== undefined) {
    const principal = await authenticator.authenticateSession(sessionToken);
    if (!principal) throw new InvalidCredential();
    return principal;
  }
  return ANONYMOUS;
}

function rootFieldNames(document: DocumentNode, operationName: string | null | undefined): string[] {
  const operations = document.definitions.filter(
    (d): d is OperationDefinitionNode => d.kind === Kind.OPERATION_DEFINITION,
  );
  const operation = operationName ? operations.find((o) => o.name?.value === operationName) : operations[0];
  if (!operation) return [];
  const fragments = new Map(
    document.definitions
      .filter((d): d is FragmentDefinitionNode => d.kind === Kind.FRAGMENT_DEFINITION)
      .map((d) => [d.name.value, d]),
  );
  const names: string[] = [];
  const seen = new Set<string>();
  const visit = (selectionSet: SelectionSetNode) => {
    for (const selection of selectionSet.selections) {
      if (selection.kind === Kind.FIELD) names.push(selection.name.value);
      else if (selection.kind === Kind.INLINE_FRAGMENT) visit(selection.selectionSet);
      else if (!seen.has(selection.name.value)) {
        seen.add(selection.name.value);
        const fragment = fragments.get(selection.name.value);
        if (fragment) visit(fragment.selectionSet);
      }
    }
  };
  visit(operation.selectionSet);
  if (operation.operation === "subscription") names.push("(subscription)");
  return names;
}

export function touchesOnlyPublicFields(document: DocumentNode, operationName?: string | null): boolean {
  return rootFieldNames(document, operationName).every(
    (name) => name.startsWith("__") || PUBLIC_ROOT_FIELDS.has(name),
  );
}

/**
 * An anonymous caller whose operation touches any non-public root field gets HTTP 401 with the
 * one UNAUTHENTICATED error, before any resolver runs.
 */
export function useAuthentication(): Plugin<{ principal: Principal }> {
  const check = (document: DocumentNode, operationName: string | null | undefined, principal: Principal) =>
    principal.kind === "anonymous" && !touchesOnlyPublicFields(document, operationName);
  return {
    onExecute({ args, setResultAndStopExecution }) {
      if (check(args.document, args.operationName, args.contextValue.principal)) {
        setResultAndStopExecution({ errors: [unauthenticated()] });
      }
    },
    onSubscribe({ args, setResultAndStopExecution }) {
      if (check(args.document, args.operationName, args.contextValue.principal)) {
        setResultAndStopExecution({ errors: [unauthenticated()] });
      }
    },
  };
}

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

/**
 * Browser protections for cookie-authenticated requests. A request carrying the session cookie from
 * a foreign origin is refused outright. And CSRF prevention (yoga's plugin): a browser sends the
 * cookie with a cross-site "simple" request (form POST, text/plain, GET) without a preflight, so such
 * a request must carry a JSON content type or the `x-graphql-yoga-csrf` header. Bearer-key requests
 * cannot be forged that way and are left alone.
 */
export function useCookieCsrfPrevention(allowedOrigins: readonly string[]): Plugin {
  const csrf = useCSRFPrevention({ requestHeaders: ["x-graphql-yoga-csrf"] }) as Plugin;
  return {
    onRequestParse(payload) {
      const { headers } = payload.request;
      if (headers.has("authorization") || readCookie(headers.get("cookie"), SESSION_COOKIE) === undefined)
        return;
      if (!originMayUseSession(payload.request, allowedOrigins)) throw foreignOriginError();
      return csrf.onRequestParse?.(payload);
    },
  };
}

/**
 * CORS: credentialed (cookies) only for the origins in CORS_ORIGINS; any other origin may call with a
 * Bearer token it holds, but the browser sends it no cookie and shows it no response to one.
 */
export function corsOptions(allowedOrigins: readonly string[]) {
  return (request: Request) => {
    const origin = request.headers.get("origin");
    if (origin !== null && allowedOrigins.includes(origin)) return { origin: [origin], credentials: true };
    return { origin: ["*"], credentials: false };
  };
}
