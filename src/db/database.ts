// Kysely over a pg.Pool: the only way the application talks to PostgreSQL.
import { AsyncLocalStorage } from "node:async_hooks";
import { createHash } from "node:crypto";
import { Kysely, PostgresDialect, sql } from "kysely";
import pg from "pg";
import { poolTypes } from "./type-parsers.ts";
import type { Database } from "./types.ts";

export type Db = Kysely<Database>;

/**
 * The statements of one unit of work (an HTTP request): every statement run in its asynchronous
 * context while it is open is counted, whatever else the process runs at the same time (the job
 * queue, other requests). Closed when the unit's answer is complete, so that work it started and left
 * running is not counted after that.
 */
export class StatementTally {
  count = 0;
  open = true;
}

const tallies = new AsyncLocalStorage<StatementTally>();

/** Runs `fn` with the statements it runs (and those of the work it starts) counted in `tally`. */
export function countStatements<T>(tally: StatementTally, fn: () => T): T {
  return tallies.run(tally, fn);
}

export interface DatabaseHandle {
  db: Db;
  pool: pg.Pool;
  destroy(): Promise<void>;
  /** SQL statements this handle has executed: the measure behind "a list must not issue a query per item". */
  statementCount(): number;
  /** Resolves when the database answers `SELECT 1` within `timeoutMs`, rejects otherwise (readiness). */
  ping(timeoutMs: number): Promise<void>;
}

export interface DatabaseOptions {
  max?: number;
  /** Run statements with parameters as named prepared statements (see prepareStatements). */
  preparedStatements?: boolean;
  /**
   * Longest wait for a connection: opening one, or waiting for a free one when all are busy. Unset:
   * no bound (tests and one-off tools).
   */
  connectTimeoutMs?: number;
  /**
   * PostgreSQL's statement_timeout on every connection, plus a client-side read timeout a little
   * above it (see readTimeoutMs). Unset: statements are unbounded (migrations must not be cut short).
   */
  statementTimeoutMs?: number;
}

/**
 * How long the client waits for any answer: statement_timeout lets the server cancel a slow statement
 * itself (57014, rolled back), and the cancellation needs time to reach us, so the client waits that
 * much longer before deciding the server is not answering at all (paused, partitioned), which
 * statement_timeout cannot catch since the server enforces it.
 */
function readTimeoutMs(statementTimeoutMs: number, connectTimeoutMs = 5_000): number {
  return statementTimeoutMs + connectTimeoutMs;
}

export function createDatabase(connectionString: string, options: DatabaseOptions = {}): DatabaseHandle {
  const pool = new pg.Pool({
    connectionString,
    max: options.max ?? 20,
    // A database restart or failover breaks idle connections; the pool replaces them on next use.
    idleTimeoutMillis: 30_000,
    application_name: "mailroom",
    types: poolTypes,
    connectionTimeoutMillis: options.connectTimeoutMs ?? 0,
    // Sent in the startup packet: no extra round trip per connection.
    ...(options.statementTimeoutMs === undefined
      ? {}
      : {
          statement_timeout: options.statementTimeoutMs,
          query_timeout: readTimeoutMs(options.statementTimeoutMs, options.connectTimeoutMs),
        }),
    // Idle connections probe their peer: one to a host that vanished (no FIN, no RST) fails rather
    // than lingers.
    keepAlive: true,
    keepAliveInitialDelayMillis: 10_000,
  });
  // An idle client's error (the server went away) must not crash the process; the next query fails instead.
  pool.on("error", () => {});
  // A client's connection can also end while it is checked out, between two statements (a failover,
  // pg_terminate_backend). pg then emits 'error' on the client, which the pool no longer listens to
  // once it is handed out: without this listener that is an uncaught exception. Its pending and later
  // queries fail on their own, and the pool drops the client when it is released.
  pool.on("connect", (client) => client.on("error", () => {}));
  discardAfterReadTimeout(pool);
  if (options.preparedStatements ?? true) prepareStatements(pool);
  // Last, so that it sees the statements as Kysely sends them, before they are prepared.
  announceQueuedJobs(pool);
  let statements = 0;
  const db = new Kysely<Database>({
    dialect: new PostgresDialect({ pool }),
    log: () => {
      statements++;
      const tally = tallies.getStore();
      if (tally?.open) tally.count++;
    },
  });
  return {
    db,
    pool,
    destroy: () => db.destroy(),
    statementCount: () => statements,
    ping: (timeoutMs) => ping(pool, timeoutMs),
  };
}

/**
 * Starts a statement that may put jobs in the job outbox (src/jobs/outbox.ts). Once what it wrote
 * commits (at once outside a transaction), the pool emits JOBS_COMMITTED, and this node moves the
 * jobs to graphile-worker. A statement that returns a column `jobs_queued` counts as queuing only when
 * its first row's is above 0.
 */
const QUEUES_JOBS_TEXT = "/* queues jobs */";
export const QUEUES_JOBS = sql.raw(QUEUES_JOBS_TEXT);
/** The pool event: jobs queued by a statement marked QUEUES_JOBS have committed. */
const JOBS_COMMITTED = "jobs-committed";

/** Calls `listener` each time jobs queued through `pool` commit; returns what stops it. */
export function onJobsCommitted(pool: pg.Pool, listener: () => void): () => void {
  const events = pool as unknown as NodeJS.EventEmitter;
  events.on(JOBS_COMMITTED, listener);
  return () => events.off(JOBS_COMMITTED, listener);
}

function emitJobsCommitted(pool: pg.Pool): void {
  (pool as unknown as NodeJS.EventEmitter).emit(JOBS_COMMITTED);
}

/** Whether a marked statement's result says it queued jobs. */
function queuedJobs(result: pg.QueryResult): boolean {
  if (!result.fields.some((field) => field.name === "jobs_queued")) return true;
  return Number(result.rows[0]?.jobs_queued ?? 0) > 0;
}

/**
 * Follows each connection's transactions (Kysely sends `begin`, `commit` and `rollback` as such) to
 * emit JOBS_COMMITTED when one that ran a marked statement that queued jobs commits.
 */
function announceQueuedJobs(pool: pg.Pool): void {
  pool.on("connect", (client) => {
    const query = client.query.bind(client) as (...args: unknown[]) => unknown;
    let inTransaction = false;
    let queued = false;
    (client as unknown as { query: (...args: unknown[]) => unknown }).query = (...args: unknown[]) => {
      const text = args[0];
      const result = query(...args);
      if (typeof text !== "string" || typeof (result as Promise<unknown> | undefined)?.then !== "function") {
        return result;
      }
      if (text === "begin") {
        inTransaction = true;
        queued = false;
      } else if (text === "commit" || text === "rollback") {
        const announce = queued && text === "commit";
        inTransaction = false;
        queued = false;
        if (announce)
          (result as Promise<unknown>).then(
            () => emitJobsCommitted(pool),
            () => {},
          );
      } else if (text.startsWith(QUEUES_JOBS_TEXT)) {
        const outside = !inTransaction;
        (result as Promise<pg.QueryResult>).then(
          (done) => {
            if (!queuedJobs(done)) return;
            if (outside) emitJobsCommitted(pool);
            else queued = true;
          },
          () => {},
        );
      }
      return result;
    };
  });
}

const READ_TIMEOUT = "Query read timeout";

/**
 * After pg's query_timeout the statement is still on the wire and the connection still waits for its
 * answer: every later statement on it would queue behind one that may never finish. Such a connection
 * is closed, so that the pool drops it when it is released instead of handing it out again.
 */
function discardAfterReadTimeout(pool: pg.Pool): void {
  pool.on("connect", (client) => {
    const query = client.query.bind(client) as (...args: unknown[]) => unknown;
    const discard = (error: unknown) => {
      if ((error as Error | undefined)?.message === READ_TIMEOUT) client.end().catch(() => {});
    };
    (client as unknown as { query: (...args: unknown[]) => unknown }).query = (...args: unknown[]) => {
      const callback = args.at(-1);
      if (typeof callback === "function") {
        args[args.length - 1] = (error: unknown, result: unknown) => {
          discard(error);
          callback(error, result);
        };
        return query(...args);
      }
      const result = query(...args);
      if (typeof (result as Promise<unknown> | undefined)?.then === "function") {
        (result as Promise<unknown>).then(undefined, discard);
      }
      return result;
    };
  });
}

/**
 * Bounded by `timeoutMs` in every case: waiting for a connection, and the statement itself (its own
 * read timeout, so a connection to a paused server is closed rather than kept waiting).
 */
async function ping(pool: pg.Pool, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const attempt = (async () => {
    const client = await pool.connect();
    // Too late to count: hand the connection back untouched rather than spend it on a 1 ms timeout.
    if (Date.now() >= deadline) {
      client.release();
      throw new Error("timeout expired");
    }
    let failure: Error | undefined;
    try {
      // pg reads query_timeout per query too; its types only know it on the client's config.
      await client.query({
        text: "SELECT 1",
        query_timeout: Math.max(1, deadline - Date.now()),
      } as pg.QueryConfig);
    } catch (error) {
      failure = error as Error;
      throw error;
    } finally {
      client.release(failure);
    }
  })();
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error("timeout expired")), timeoutMs);
  });
  try {
    await Promise.race([attempt, expired]);
  } finally {
    clearTimeout(timer);
    attempt.catch(() => {});
  }
}

/**
 * Named prepared statements a connection keeps at most. Texts beyond run unnamed: the hot ones are
 * met first, and lists of ids (one placeholder per id) must not fill the server with plans.
 */
export const MAX_PREPARED_PER_CONNECTION = 200;

/** SQL text → statement name, so a repeated text is hashed once per process (bounded). */
const names = new Map<string, string>();
const MAX_NAMES = 10_000;

function nameOf(text: string): string {
  let name = names.get(text);
  if (name === undefined) {
    name = `mr_${createHash("sha256").update(text).digest("base64url").slice(0, 32)}`;
    if (names.size < MAX_NAMES) names.set(text, name);
  }
  return name;
}

/**
 * Marks a statement whose best plan depends on its values: a list filtered by a substring, a time
 * range or a set of ids. PostgreSQL switches a prepared statement to one generic plan for every value
 * after five executions, and the generic plan of "sender contains %s" must guess how many rows
 * match: it walked 100,000 threads for a name nobody had, where the plan for the value reads none.
 * A statement carrying this comment runs unnamed and is planned for its values each time.
 */
export const CUSTOM_PLAN = sql.raw("/* custom plan */");
const CUSTOM_PLAN_TEXT = "/* custom plan */";

/** "cached plan must not change result type": a migration changed what a prepared SELECT returns. */
const PLAN_RESULT_CHANGED = "0A000";

/**
 * Statements with parameters (what Kysely sends as `query(text, values)`) run as named prepared
 * statements, one per distinct text and connection: PostgreSQL parses and plans each once per
 * connection instead of at every execution, which was a third of its time on a page of threads.
 * Queries given as objects (graphile-worker names its own), statements without parameters (BEGIN,
 * COMMIT) and those marked CUSTOM_PLAN pass through unchanged. A migration run by another node can change what a prepared
 * statement returns; its next execution fails once, and the connection stops preparing.
 */
function prepareStatements(pool: pg.Pool): void {
  pool.on("connect", (client) => {
    const query = client.query.bind(client) as (...args: unknown[]) => Promise<unknown>;
    const prepared = new Set<string>();
    let preparing = true;
    (client as unknown as { query: (...args: unknown[]) => unknown }).query = (...args: unknown[]) => {
      const [text, values] = args;
      if (
        preparing &&
        args.length === 2 &&
        typeof text === "string" &&
        Array.isArray(values) &&
        values.length > 0 &&
        !text.includes(CUSTOM_PLAN_TEXT)
      ) {
        const name = nameOf(text);
        if (prepared.has(name) || prepared.size < MAX_PREPARED_PER_CONNECTION) {
          prepared.add(name);
          return query({ name, text, values }).catch((error: { code?: string }) => {
            if (error.code === PLAN_RESULT_CHANGED) preparing = false;
            throw error;
          });
        }
      }
      return query(...args);
    };
  });
}
