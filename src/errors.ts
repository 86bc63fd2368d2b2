// Expected failures, each a GraphQLError with a stable `extensions.code` (API.md, "Error codes").
import { GraphQLError } from "graphql";
import { maskError } from "graphql-yoga";
import type { Permission } from "./auth/permissions.ts";
import { isDatabaseUnavailable } from "./db/errors.ts";

export const UNAUTHENTICATED_MESSAGE =
  "Authentication required. Provide a valid session cookie or Bearer token.";
export const WWW_AUTHENTICATE = 'Bearer realm="API", charset="UTF-8"';

/** One message and one shape for every cause (missing, malformed, unknown, deleted, expired): no oracle. */
export function unauthenticated(): GraphQLError {
  return new GraphQLError(UNAUTHENTICATED_MESSAGE, {
    extensions: {
      code: "UNAUTHENTICATED",
      http: { status: 401, headers: { "WWW-Authenticate": WWW_AUTHENTICATE } },
    },
  });
}

export function forbidden(requiredPermission: Permission): GraphQLError {
  return new GraphQLError(`This requires the ${requiredPermission} permission.`, {
    extensions: { code: "FORBIDDEN", requiredPermission },
  });
}

/** Missing, outside the caller's scope and hidden by a label all look exactly alike. */
export function notFound(what = "Object"): GraphQLError {
  return new GraphQLError(`${what} not found.`, { extensions: { code: "NOT_FOUND" } });
}

export function badUserInput(message: string, field?: string): GraphQLError {
  return new GraphQLError(message, {
    extensions: field === undefined ? { code: "BAD_USER_INPUT" } : { code: "BAD_USER_INPUT", field },
  });
}

export function conflict(message: string, field?: string): GraphQLError {
  return new GraphQLError(message, {
    extensions: field === undefined ? { code: "CONFLICT" } : { code: "CONFLICT", field },
  });
}

/** Seconds a client is told to wait when the database is away: about what a restart of it takes. */
export const DATABASE_RETRY_AFTER_SECONDS = 5;

export const DATABASE_UNAVAILABLE_MESSAGE =
  "The service is temporarily unavailable: its database cannot be reached or did not answer in time. Try again later.";

/**
 * HTTP 503 with Retry-After. `located` keeps the path and locations of the field that failed, so a
 * partial result still says where.
 */
export function serviceUnavailable(located?: GraphQLError): GraphQLError {
  return new GraphQLError(DATABASE_UNAVAILABLE_MESSAGE, {
    nodes: located?.nodes,
    source: located?.source,
    positions: located?.positions,
    path: located?.path,
    extensions: {
      code: "SERVICE_UNAVAILABLE",
      http: { status: 503, headers: { "Retry-After": String(DATABASE_RETRY_AFTER_SECONDS) } },
    },
  });
}

/**
 * yoga's maskError, and the one place that decides what a client is told of a failure on every
 * transport (HTTP, SSE, graphql-ws all run through yoga): expected errors as they are, a database
 * that is away as SERVICE_UNAVAILABLE, anything else masked (details only when `isDev`).
 */
export function presentError(error: unknown, message: string, isDev?: boolean): Error {
  if (isDatabaseUnavailable(error))
    return serviceUnavailable(error instanceof GraphQLError ? error : undefined);
  return maskError(error, message, isDev);
}
