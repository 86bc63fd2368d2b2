// The yoga plugins that guard requests before they run: anonymous callers reach only public fields,
// cookie requests come from our own pages and pass CSRF prevention, and CORS is credentialed only for
// CORS_ORIGINS (docs/permissions.md, "Callers" and "Browsers").
import { useCSRFPrevention } from "@graphql-yoga/plugin-csrf-prevention";
import type { DocumentNode } from "graphql";
import type { Plugin } from "graphql-yoga";
import { readCookie, SESSION_COOKIE, touchesOnlyPublicFields } from "../auth/credentials.ts";
import { foreignOriginError, originMayUseSession } from "../auth/origin.ts";
import type { Principal } from "../auth/principal.ts";
import { unauthenticated } from "../errors.ts";

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
