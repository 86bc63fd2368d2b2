// What an operator sees of a running node: Prometheus metrics (GET /metrics), a request id on every
// response, and one access-log line per request. docs/operations.md ("Metrics and logs") is the
// reference for the names and the rules; nothing here ever records a credential, a download token or
// a query string.
import { createHash, randomUUID, timingSafeEqual } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { usePrometheus } from "@graphql-yoga/plugin-prometheus";
import { type ExecutionArgs, getOperationAST } from "graphql";
import type { Plugin } from "graphql-yoga";
import type pg from "pg";
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";
import type { Config } from "../config.ts";
import { StatementTally } from "../db/database.ts";
import type { Logger } from "../logger.ts";

/** Longest request id kept from a request; longer ones are cut. */
export const MAX_REQUEST_ID_LENGTH = 128;
const LOOPBACK_HOSTS = new Set(["127.0.0.1", "::1", "localhost", "[::1]"]);
/**
 * Operation names come from clients, so as metric labels they are bounded: the first this many distinct
 * names a node sees keep their own series, later ones share OTHER_OPERATIONS.
 */
export const MAX_OPERATION_LABELS = 100;
/** The label of operations past MAX_OPERATION_LABELS (not a valid GraphQL name, so no operation has it). */
export const OTHER_OPERATIONS = "[other]";
/** Paths whose access-log line is at debug level: probes and scrapes arrive every few seconds. */
const QUIET_PATHS = new Set(["/healthz", "/readyz", "/metrics", "/favicon.ico"]);

interface RequestInfo {
  id: string;
  operation?: string;
}

/** How many recent requests' statement tallies statementsOf() can answer for. */
const RECENT_TALLIES = 1_000;

/**
 * The request id a request carries in `X-Request-Id`, kept when it is made of safe characters
 * (letters, digits, `.`, `_`, `-`, `:`), others removed, at most MAX_REQUEST_ID_LENGTH; a new UUID
 * when nothing usable is left.
 */
export function requestIdOf(header: string | string[] | undefined): string {
  const given = Array.isArray(header) ? header[0] : header;
  const cleaned = (given ?? "").replace(/[^A-Za-z0-9._:-]/g, "").slice(0, MAX_REQUEST_ID_LENGTH);
  return cleaned === "" ? randomUUID() : cleaned;
}

/** The path as logged: no query string, no download token, bounded. */
export function loggablePath(url: string | undefined): string {
  const path = (url ?? "").split("?")[0] ?? "";
  return path.replace(/^\/files\/.*/, "/files/[token]").slice(0, 200);
}

function sha256(text: string): Buffer {
  return createHash("sha256").update(text).digest();
}

export class Observability {
  readonly registry = new Registry();
  private readonly requests = new WeakMap<IncomingMessage, RequestInfo>();
  /** The statement tallies of the latest requests, by request id (oldest first). */
  private readonly tallies = new Map<string, StatementTally>();
  private readonly smtpReplies: Counter<"stage" | "result" | "code">;
  private readonly graphqlErrors: Counter<"operation" | "code">;
  private readonly subscriptions: Gauge<"transport">;
  private readonly eventLag: Histogram;
  private readonly operationDuration: Histogram<"operation">;
  private readonly operationLabels = new Set<string>();
  private readonly accessLog: Logger;
  private pool: pg.Pool | undefined;

  constructor(
    private readonly config: Pick<Config, "metricsToken" | "host">,
    logger: Logger,
  ) {
    this.accessLog = logger.child({ component: "http" });
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, prefix: "mailroom_" });
    this.smtpReplies = new Counter({
      name: "mailroom_smtp_replies_total",
      help: "Inbound SMTP replies to RCPT TO (stage=rcpt) and at the end of DATA (stage=data), accepted (2xx) or refused",
      labelNames: ["stage", "result", "code"],
      registers,
    });
    this.graphqlErrors = new Counter({
      name: "mailroom_graphql_errors_total",
      help: "GraphQL errors in responses over HTTP, by operation name and extensions.code",
      labelNames: ["operation", "code"],
      registers,
    });
    this.operationDuration = new Histogram({
      name: "mailroom_graphql_request_duration_seconds",
      help: "GraphQL requests over HTTP, from arrival to the response's end, by operation name (bounded)",
      labelNames: ["operation"],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    });
    this.subscriptions = new Gauge({
      name: "mailroom_subscriptions_open",
      help: "GraphQL subscriptions open on this node, by transport (sse, websocket)",
      labelNames: ["transport"],
      registers,
    });
    this.subscriptions.set({ transport: "sse" }, 0);
    this.subscriptions.set({ transport: "websocket" }, 0);
    this.eventLag = new Histogram({
      name: "mailroom_event_delivery_lag_seconds",
      help: "From an organization's newest settled event being written to this node noticing it",
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    });
    const observability = this;
    new Gauge({
      name: "mailroom_db_pool_connections",
      help: "Application database pool connections: total, idle, and requests waiting for one (waiting)",
      labelNames: ["state"],
      registers,
      collect() {
        const pool = observability.pool;
        if (!pool) return;
        this.set({ state: "total" }, pool.totalCount);
        this.set({ state: "idle" }, pool.idleCount);
        this.set({ state: "waiting" }, pool.waitingCount);
      },
    });
    new Gauge({
      name: "mailroom_jobs",
      help: "Background jobs by task and state: queued (waiting or due), running (locked), failed (gave up after their last attempt)",
      labelNames: ["task", "state"],
      registers,
      async collect() {
        const pool = observability.pool;
        if (!pool) return;
        this.reset();
        const { rows } = await pool.query<{ task: string; state: string; count: string }>(
          `SELECT task_identifier AS task,
             CASE WHEN attempts >= max_attempts THEN 'failed'
                  WHEN locked_at IS NOT NULL THEN 'running' ELSE 'queued' END AS state,
             count(*) AS count
           FROM graphile_worker.jobs GROUP BY 1, 2`,
        );
        for (const row of rows) this.set({ task: row.task, state: row.state }, Number(row.count));
      },
    });
  }

  /** The application pool, whose connections and job tables the metrics report. */
  attachDatabase(pool: pg.Pool): void {
    this.pool = pool;
  }

  /** For the SMTP listener's onReply. */
  readonly smtpReply = (stage: "rcpt" | "data", code: number): void => {
    this.smtpReplies.inc({ stage, result: code < 400 ? "accepted" : "refused", code: String(code) });
  };

  /** For the event bus: how long after it was written an organization's newest settled event was noticed. */
  readonly eventDelivered = (ms: number): void => {
    this.eventLag.observe(ms / 1000);
  };

  /** yoga's Prometheus plugin (requests, durations and errors by operation and phase) on our registry. */
  prometheusPlugin(): Plugin {
    return usePrometheus({
      registry: this.registry,
      endpoint: false,
      // Labels a client chooses freely would let it grow the registry without bound: operation names
      // (our own metrics carry them, bounded: operationLabel), error paths (list indexes) and urls.
      labels: { url: false, operationName: false, path: false },
      metrics: {
        graphql_envelop_request: true,
        graphql_envelop_request_duration: true,
        graphql_envelop_error_result: true,
        graphql_envelop_phase_parse: true,
        graphql_envelop_phase_validate: true,
        graphql_envelop_phase_context: true,
        graphql_envelop_phase_execute: true,
        graphql_envelop_phase_subscribe: true,
        graphql_yoga_http_duration: true,
      },
    });
  }

  /** Notes each request's operation name (for its log line), counts errors by code and open subscriptions. */
  operationsPlugin(): Plugin {
    const observability = this;
    const note = (args: ExecutionArgs) => {
      const req = (args.contextValue as { req?: IncomingMessage } | undefined)?.req;
      const info = req ? observability.requests.get(req) : undefined;
      if (info && info.operation === undefined) {
        info.operation = getOperationAST(args.document, args.operationName)?.name?.value ?? "anonymous";
      }
    };
    return {
      onParams({ params, context }) {
        const req = (context as { req?: IncomingMessage }).req;
        const info = req ? observability.requests.get(req) : undefined;
        if (info && typeof params.operationName === "string" && params.operationName !== "") {
          info.operation = params.operationName.slice(0, 100);
        }
      },
      // After parsing, so requests refused by validation are named too (execution never sees them).
      onParse({ context }) {
        return ({ result }) => {
          const req = (context as { req?: IncomingMessage }).req;
          const info = req ? observability.requests.get(req) : undefined;
          if (!info || info.operation !== undefined || !result || result instanceof Error) return;
          const { operationName } = (context as { params?: { operationName?: unknown } }).params ?? {};
          const chosen = typeof operationName === "string" ? operationName : undefined;
          info.operation = getOperationAST(result, chosen)?.name?.value.slice(0, 100) ?? "anonymous";
        };
      },
      onExecute({ args }) {
        note(args);
      },
      onSubscribe({ args }) {
        note(args);
        const transport = (args.contextValue as { wsPrincipal?: unknown }).wsPrincipal ? "websocket" : "sse";
        return {
          onSubscribeResult({ result }) {
            if (!(Symbol.asyncIterator in result)) return;
            observability.subscriptions.inc({ transport });
            let ended = false;
            return {
              onEnd() {
                if (ended) return;
                ended = true;
                observability.subscriptions.dec({ transport });
              },
            };
          },
        };
      },
      onResultProcess({ result, serverContext }) {
        if (Symbol.asyncIterator in result) return;
        const results = Array.isArray(result) ? result : [result];
        const req = (serverContext as { req?: IncomingMessage }).req;
        const operation = (req && observability.requests.get(req)?.operation) ?? "anonymous";
        for (const one of results) {
          for (const error of one.errors ?? []) {
            const code = (error as { extensions?: { code?: unknown } }).extensions?.code;
            observability.graphqlErrors.inc({
              operation: observability.operationLabel(operation),
              code: typeof code === "string" ? code.slice(0, 64) : "UNKNOWN",
            });
          }
        }
      },
    };
  }

  /** The label an operation name gets in metrics: itself for the first MAX_OPERATION_LABELS names. */
  private operationLabel(name: string): string {
    if (this.operationLabels.has(name)) return name;
    if (this.operationLabels.size >= MAX_OPERATION_LABELS) return OTHER_OPERATIONS;
    this.operationLabels.add(name);
    return name;
  }

  /**
   * Gives the request its id (the X-Request-Id response header) and, when the response is done,
   * writes its one access-log line, with the SQL statements the request ran: the tally returned,
   * which the caller runs the request under (countStatements), closed when the response ends.
   */
  beginRequest(req: IncomingMessage, res: ServerResponse): StatementTally {
    const started = performance.now();
    const info: RequestInfo = { id: requestIdOf(req.headers["x-request-id"]) };
    this.requests.set(req, info);
    res.setHeader("X-Request-Id", info.id);
    const tally = new StatementTally();
    this.remember(info.id, tally);
    const end = res.end;
    res.end = function (this: ServerResponse, ...args: unknown[]) {
      tally.open = false;
      return (end as (...a: unknown[]) => ServerResponse).apply(this, args);
    } as typeof res.end;
    res.once("close", () => {
      const path = loggablePath(req.url);
      const ms = performance.now() - started;
      if (info.operation !== undefined) {
        this.operationDuration.observe({ operation: this.operationLabel(info.operation) }, ms / 1000);
      }
      const line = {
        reqId: info.id,
        method: req.method,
        path,
        ...(info.operation === undefined ? {} : { operation: info.operation }),
        status: res.statusCode,
        ms: Math.round(ms * 10) / 10,
        sql: tally.count,
        ...(res.writableFinished ? {} : { aborted: true }),
      };
      if (QUIET_PATHS.has(path) || path.startsWith("/graphiql/")) this.accessLog.debug(line, "request");
      else this.accessLog.info(line, "request");
    });
    return tally;
  }

  private remember(id: string, tally: StatementTally): void {
    this.tallies.delete(id);
    this.tallies.set(id, tally);
    if (this.tallies.size > RECENT_TALLIES) this.tallies.delete(this.tallies.keys().next().value as string);
  }

  /**
   * The SQL statements of the latest request with this X-Request-Id, among the last RECENT_TALLIES
   * requests: what "a list must not issue a query per item" is measured by, free of what the rest
   * of the process runs meanwhile.
   */
  statementsOf(requestId: string): number | undefined {
    return this.tallies.get(requestId)?.count;
  }

  /**
   * A WebSocket upgrade (graphql-ws): the id goes into the 101 response's headers (`headers` is ws's
   * list for them), and one access-log line is written when the connection closes.
   */
  beginUpgrade(req: IncomingMessage, headers: string[]): void {
    const info: RequestInfo = { id: requestIdOf(req.headers["x-request-id"]) };
    this.requests.set(req, info);
    headers.push(`X-Request-Id: ${info.id}`);
  }

  /** The upgraded connection of beginUpgrade's request: its access-log line when it closes. */
  upgraded(
    req: IncomingMessage,
    socket: { once(event: "close", listener: (code: number) => void): unknown },
  ) {
    const started = performance.now();
    const id = this.requests.get(req)?.id ?? requestIdOf(undefined);
    socket.once("close", (code: number) => {
      this.accessLog.info(
        {
          reqId: id,
          method: req.method,
          path: loggablePath(req.url),
          status: 101,
          ms: Math.round((performance.now() - started) * 10) / 10,
          closeCode: code,
        },
        "websocket",
      );
    });
  }

  /** The request id beginRequest gave this request. */
  requestId(req: IncomingMessage): string | undefined {
    return this.requests.get(req)?.id;
  }

  /**
   * GET /metrics. With METRICS_TOKEN: only with `Authorization: Bearer <token>` (401 otherwise,
   * loopback included). Without: served only when HOST is a loopback address (404 otherwise).
   */
  async serveMetrics(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const token = this.config.metricsToken;
    if (token === undefined) {
      if (!LOOPBACK_HOSTS.has(this.config.host)) {
        res.writeHead(404).end();
        return;
      }
    } else {
      const match = /^Bearer (.+)$/i.exec(req.headers.authorization ?? "");
      if (!match?.[1] || !timingSafeEqual(sha256(match[1].trim()), sha256(token))) {
        res
          .writeHead(401, {
            "content-type": "text/plain; charset=utf-8",
            "www-authenticate": 'Bearer realm="metrics"',
          })
          .end("401 Unauthorized: /metrics needs Authorization: Bearer <METRICS_TOKEN>\n");
        return;
      }
    }
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { allow: "GET, HEAD" }).end();
      return;
    }
    try {
      const body = await this.registry.metrics();
      res.writeHead(200, { "content-type": this.registry.contentType, "cache-control": "no-store" });
      res.end(req.method === "HEAD" ? undefined : body);
    } catch (error) {
      this.accessLog.warn({ err: error }, "collecting metrics failed");
      res
        .writeHead(503, { "content-type": "text/plain; charset=utf-8", "retry-after": "5" })
        .end("503 metrics unavailable (the database did not answer)\n");
    }
  }
}
