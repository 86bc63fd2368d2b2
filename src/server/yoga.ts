// The GraphQL server (graphql-yoga): the schema, the plugins every operation passes through on every
// transport, and the context built for each request from its credentials.
import type { IncomingMessage, ServerResponse } from "node:http";
import { createYoga, type Plugin, type YogaServerInstance } from "graphql-yoga";
import { addressAllowed, addressNotAllowed } from "../auth/allowed-ips.ts";
import { authenticateOnce, InvalidCredential, readCookie, SESSION_COOKIE } from "../auth/credentials.ts";
import { originMayUseSession } from "../auth/origin.ts";
import type { Principal } from "../auth/principal.ts";
import type { Config } from "../config.ts";
import { unauthenticated } from "../errors.ts";
import type { Logger } from "../logger.ts";
import { type Context, createContext } from "../schema/context.ts";
import type { FanOut, FrameSink } from "../schema/fan-out.ts";
import { schema, schemaWithoutAuthorization } from "../schema/index.ts";
import { useInputRules } from "../schema/input-rules.ts";
import { type SharedResults, useSharedSubscriptionResults } from "../schema/shared-results.ts";
import type { Services } from "../services.ts";
import { clearedCookie } from "../users/service.ts";
import { maxRequestBodyBytes, useOperationLimits } from "./armor.ts";
import { baseUrlOf } from "./base-url.ts";
import { useRequestBodyLimit } from "./body-limit.ts";
import { useCompiledQueries } from "./compiled-queries.ts";
import { presentError } from "./errors.ts";
import { renderLocalGraphiQL, WELCOME_QUERY } from "./graphiql.ts";
import type { Observability } from "./observability.ts";
import { clientAddress, useRateLimit } from "./rate-limit.ts";
import { corsOptions, useAuthentication, useCookieCsrfPrevention } from "./request-guards.ts";

/** What each request carries into yoga: the Node request and response, or a graphql-ws operation's caller. */
export interface ServerContext {
  req?: IncomingMessage;
  res?: ServerResponse;
  /** Set by the WebSocket layer, which authenticates once at connection_init. */
  wsPrincipal?: Principal;
  wsClientIp?: string;
  wsBaseUrl?: string;
  /** Set by the WebSocket layer for each operation: where the fan-out writes a subscription's frames. */
  wsFrames?: FrameSink;
  /** Set by POST /mcp for the operations its tools run: that request was rate-limited already. */
  mcp?: boolean;
}

export type Yoga = YogaServerInstance<ServerContext, Context>;

export function buildYoga(
  config: Config,
  services: Services,
  sharedResults: SharedResults,
  fanOut: FanOut,
  logger: Logger,
  observability: Observability,
  /** Tracing's plugins (src/server/tracing.ts) when OTEL_EXPORTER_OTLP_ENDPOINT is set; none otherwise. */
  tracingPlugins: readonly Plugin[] = [],
): Yoga {
  if (config.benchDisableAuthorization) {
    logger.warn("BENCH_DISABLE_AUTHORIZATION: permission checks are OFF (benchmarks only)");
  }
  return createYoga<ServerContext, Context>({
    schema: config.benchDisableAuthorization ? schemaWithoutAuthorization() : schema,
    graphqlEndpoint: "/graphql",
    landingPage: false,
    logging: logger,
    batching: false,
    // Details of unexpected errors only when NODE_ENV=development: a default start leaks no stack.
    // A database that is away is not a bug: HTTP 503 with Retry-After, for every operation,
    // transport and the authentication in the context alike (docs/operations.md).
    maskedErrors: { isDev: config.development, maskError: presentError },
    // Enforced by useRequestBodyLimit, which streams only bodies that have no Content-Length.
    maxRequestBodySize: false,
    graphiql: {
      title: "Mailroom",
      defaultQuery: WELCOME_QUERY,
      // Subscriptions over SSE: a fetch, which carries the Headers tab and the session cookie alike
      // (a browser WebSocket can carry no header, and GraphiQL sends it no connection parameters).
      subscriptionsProtocol: "SSE",
      credentials: "same-origin",
      // Our own page proves itself to the cookie's CSRF check (request-guards.ts) on every request,
      // the SSE stream included; a page of another origin cannot send it without a preflight.
      additionalHeaders: { "x-graphql-yoga-csrf": "graphiql" },
    },
    cors: corsOptions(config.corsOrigins),
    renderGraphiQL: renderLocalGraphiQL,
    plugins: [
      // First: the plugins after it that wrap execution (tracing's context) wrap the compiled run too.
      useCompiledQueries(),
      ...tracingPlugins,
      observability.prometheusPlugin(),
      observability.operationsPlugin(),
      useRequestBodyLimit(maxRequestBodyBytes(config)),
      useRateLimit({ ...services, config }),
      useOperationLimits({ blockFieldSuggestions: !config.development }),
      useInputRules(),
      useCookieCsrfPrevention(config.corsOrigins),
      useAuthentication(),
      useSharedSubscriptionResults(sharedResults, fanOut),
    ],
    context: async (initial) => {
      if (initial.wsPrincipal) {
        return createContext(services, initial.wsPrincipal, {
          clientIp: initial.wsClientIp,
          baseUrl: initial.wsBaseUrl,
          frames: initial.wsFrames,
        });
      }
      const request = (initial as unknown as { request: Request }).request;
      const sessionToken = readCookie(request.headers.get("cookie"), SESSION_COOKIE);
      try {
        // The rate limiter has usually authenticated this request already.
        const principal = await authenticateOnce(services.authenticator, initial.req, request);
        const clientIp = clientAddress(initial.req, config.trustProxy);
        // A key pinned to addresses is refused from any other, on every operation (HTTP and SSE).
        if (principal.kind === "apiKey" && !addressAllowed(principal.allowedIps, clientIp)) {
          throw addressNotAllowed();
        }
        return createContext(services, principal, {
          setCookie: (cookie) => initial.res?.appendHeader("Set-Cookie", cookie),
          foreignOrigin: !originMayUseSession(request, config.corsOrigins),
          secure: isSecureRequest(request),
          clientIp,
          baseUrl: baseUrlOf(config, request.headers.get("host"), isSecureRequest(request)),
          idempotencyKeyHeader: request.headers.get("idempotency-key") ?? undefined,
        });
      } catch (error) {
        if (!(error instanceof InvalidCredential)) throw error;
        // A stale session cookie is dropped along with the 401, so the next login can succeed.
        if (sessionToken !== undefined && !request.headers.has("authorization")) {
          initial.res?.appendHeader("Set-Cookie", clearedCookie(SESSION_COOKIE, isSecureRequest(request)));
        }
        throw unauthenticated();
      }
    },
  });
}

function isSecureRequest(request: Request): boolean {
  return request.url.startsWith("https:") || request.headers.get("x-forwarded-proto") === "https";
}
