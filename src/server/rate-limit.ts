// The default rate limit on the wire: checked for every HTTP request before its body is read, and
// for every graphql-ws operation; the request's address as the limits see it.
import type { IncomingMessage, ServerResponse } from "node:http";
import type { GraphQLError } from "graphql";
import type { Plugin } from "graphql-yoga";
import { forwardedClient, type TrustedProxies } from "../auth/allowed-ips.ts";
import type { Authenticator } from "../auth/authenticator.ts";
import { authenticateOnce } from "../auth/credentials.ts";
import type { Principal } from "../auth/principal.ts";
import {
  callerKey,
  type RateLimiter,
  type RateLimitOutcome,
  RateLimitUnavailable,
  rateLimitedError,
  rateLimitHeaders,
  rateLimitUnavailableError,
} from "../auth/rate-limit.ts";

/**
 * The address a request came from, for the per-IP limits and the keys' allow-lists alike: the TCP
 * peer, or with TRUST_PROXY the right-most untrusted X-Forwarded-For address (src/auth/allowed-ips.ts
 * forwardedClient). IPv4-mapped IPv6 addresses as plain IPv4.
 */
export function clientAddress(req: IncomingMessage | undefined, trustProxy: TrustedProxies): string {
  return forwardedClient(req?.socket.remoteAddress, req?.headers["x-forwarded-for"], trustProxy);
}

interface RateLimitServices {
  rateLimiter: RateLimiter;
  authenticator: Authenticator;
  config: { trustProxy: TrustedProxies };
}

/**
 * The default limit on HTTP, checked when the request arrives: before its body is read, parsed,
 * validated or executed. A malformed, unknown or expired credential counts against the IP.
 */
export function useRateLimit(
  services: RateLimitServices,
): Plugin<object, { req?: IncomingMessage; res?: ServerResponse; mcp?: boolean }> {
  return {
    async onRequest({ request, serverContext, endResponse, fetchAPI }) {
      const limiter = services.rateLimiter;
      // A tool call's operation: its /mcp request was counted (limitRequest), once for the call.
      if (!limiter.enabled || serverContext.mcp) return;
      let principal: Principal | null;
      try {
        principal = await authenticateOnce(services.authenticator, serverContext.req, request);
      } catch {
        // The context answers 401 (or its own failure) later; here the request is the IP's.
        principal = null;
      }
      let result: RateLimitOutcome;
      try {
        result = await limiter.consume(
          limiter.defaultPolicy,
          callerKey(principal, clientAddress(serverContext.req, services.config.trustProxy)),
        );
      } catch (error) {
        if (!(error instanceof RateLimitUnavailable)) throw error;
        endResponse(errorResponse(fetchAPI.Response, rateLimitUnavailableError()));
        return;
      }
      if (!result.allowed) {
        endResponse(errorResponse(fetchAPI.Response, rateLimitedError(result)));
        return;
      }
      // Set on the Node response so they survive whatever yoga answers; a stricter bucket's refusal
      // (its own RateLimit headers, passed to writeHead) takes precedence.
      for (const [name, value] of Object.entries(rateLimitHeaders(result))) {
        serverContext.res?.setHeader(name, value);
      }
    },
  };
}

function errorResponse(ResponseClass: typeof Response, error: GraphQLError): Response {
  const http = error.extensions.http as { status: number; headers: Record<string, string> };
  return new ResponseClass(
    JSON.stringify({ errors: [{ message: error.message, extensions: { code: error.extensions.code } }] }),
    {
      status: http.status,
      headers: { "content-type": "application/json; charset=utf-8", ...http.headers },
    },
  );
}

/**
 * The default limit for one graphql-ws operation (`onSubscribe`): the error to send on that
 * operation, or undefined when it may run.
 */
export async function limitOperation(
  rateLimiter: RateLimiter,
  principal: Principal | null,
  address: string,
): Promise<GraphQLError | undefined> {
  if (!rateLimiter.enabled) return undefined;
  try {
    const result = await rateLimiter.consume(rateLimiter.defaultPolicy, callerKey(principal, address));
    return result.allowed ? undefined : rateLimitedError(result);
  } catch (error) {
    if (error instanceof RateLimitUnavailable) return rateLimitUnavailableError();
    throw error;
  }
}

/**
 * The default limit for a request answered outside yoga (POST /mcp): the refusal (429, or 503 when
 * the limiter's store is away), or the RateLimit headers to send with the answer.
 */
export async function limitRequest(
  rateLimiter: RateLimiter,
  principal: Principal | null,
  address: string,
): Promise<{ error?: GraphQLError; headers: Record<string, string> }> {
  if (!rateLimiter.enabled) return { headers: {} };
  try {
    const result = await rateLimiter.consume(rateLimiter.defaultPolicy, callerKey(principal, address));
    return result.allowed
      ? { headers: rateLimitHeaders(result) }
      : { error: rateLimitedError(result), headers: {} };
  } catch (error) {
    if (error instanceof RateLimitUnavailable) return { error: rateLimitUnavailableError(), headers: {} };
    throw error;
  }
}
