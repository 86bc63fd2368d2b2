// What a PostgreSQL or pg failure means to the caller: a constraint it broke, or a database that is
// away. The second is decided here and nowhere else (see docs/operations.md).

/** The constraint a PostgreSQL unique violation (23505) names, or undefined for any other error. */
export function uniqueViolation(error: unknown): string | undefined {
  const e = error as { code?: string; constraint?: string };
  return e?.code === "23505" ? (e.constraint ?? "") : undefined;
}

/** Socket errors of a database that cannot be reached (Node's `code`). */
const UNREACHABLE = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ECONNABORTED",
  "ETIMEDOUT",
  "EPIPE",
  "EHOSTUNREACH",
  "EHOSTDOWN",
  "ENETUNREACH",
  "ENETDOWN",
  "ENOTFOUND",
  "EAI_AGAIN",
]);

/**
 * SQLSTATEs of a server that is going away, refusing connections, or out of connection slots; class
 * 08 (connection exception) is matched by prefix. 57014 (query_canceled) is statement_timeout: the
 * database did not answer in time, and the statement's transaction was rolled back, so a retry is
 * safe and may succeed once the load has passed.
 */
const UNAVAILABLE_SQLSTATES = new Set(["57P01", "57P02", "57P03", "57014", "53300"]);

/**
 * pg and pg-pool raise these without a code: a connection lost or closed under a query, a pool
 * connect that timed out (`connectionTimeoutMillis`), a client-side read timeout (`query_timeout`),
 * and the pool or driver already shut down.
 */
const UNAVAILABLE_MESSAGES = new Set([
  "Connection terminated",
  "Connection terminated unexpectedly",
  "Connection terminated due to connection timeout",
  "timeout exceeded when trying to connect",
  "timeout expired",
  "Query read timeout",
  "Client has encountered a connection error and is not queryable",
  "Client was closed and is not queryable",
  "Cannot use a pool after calling end on the pool",
  "driver has already been destroyed",
]);

/**
 * Whether `error` (or what it wraps: a GraphQLError's originalError, a cause, an AggregateError's
 * errors) says the database is down or did not answer in time, as opposed to a bug or bad input.
 */
export function isDatabaseUnavailable(error: unknown, depth = 0): boolean {
  if (typeof error !== "object" || error === null || depth > 5) return false;
  const e = error as {
    code?: unknown;
    message?: unknown;
    originalError?: unknown;
    cause?: unknown;
    errors?: unknown;
  };
  if (typeof e.code === "string") {
    if (UNREACHABLE.has(e.code) || UNAVAILABLE_SQLSTATES.has(e.code)) return true;
    if (/^08[0-9A-Z]{3}$/.test(e.code)) return true;
  }
  if (typeof e.message === "string" && UNAVAILABLE_MESSAGES.has(e.message)) return true;
  const nested = [e.originalError, e.cause, ...(Array.isArray(e.errors) ? e.errors : [])];
  return nested.some((inner) => inner !== error && isDatabaseUnavailable(inner, depth + 1));
}
