// Expected failures, each a GraphQLError with a stable `extensions.code` (docs/architecture.md, "Errors").
import { GraphQLError } from "graphql";

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
