// What a client is told of a failure, on every transport (HTTP, SSE and graphql-ws all run through
// yoga's error masking): expected errors as they are, a database that is away as 503, anything else
// masked (docs/operations.md, "What clients see while the database is away").
import { type ExecutionResult, GraphQLError } from "graphql";
import { maskError } from "graphql-yoga";
import { isDatabaseUnavailable } from "../db/errors.ts";

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

/** yoga's masking of a result's errors, for results written without it (src/schema/fan-out.ts). */
export function presentResult(result: ExecutionResult, isDev: boolean): ExecutionResult {
  if (!result.errors?.length) return result;
  return {
    ...result,
    errors: result.errors.map((error) => presentError(error, "Unexpected error.", isDev) as GraphQLError),
  };
}
