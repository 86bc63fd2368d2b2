// The HTTP server: every request gets its id and access-log line (observability.ts); then the routes
// that are not GraphQL (health, readiness, metrics, GraphiQL's assets, and the
// routes it is given: download links), then yoga for everything else (GraphQL over POST and GET, SSE,
// the GraphiQL page).
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { countStatements } from "../db/database.ts";
import { serveFavicon, serveGraphiQLAsset } from "./graphiql.ts";
import type { Observability } from "./observability.ts";
import type { Yoga } from "./yoga.ts";

export interface Health {
  /** The process is shutting down: it finishes what it has but should get nothing new. */
  stopping(): boolean;
  /** Resolves when the database answers (within its timeout); rejects otherwise. */
  ready(): Promise<void>;
}

/** A route of the server's own: true when it answered the request. */
export type Route = (req: IncomingMessage, res: ServerResponse) => Promise<boolean>;

export function createHttpServer(
  yoga: Yoga,
  health: Health,
  observability: Observability,
  routes: readonly Route[] = [],
): Server {
  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    if (await serveOwnRoute(req, res, health, observability)) return;
    if (health.stopping()) res.setHeader("Connection", "close");
    for (const route of routes) if (await route(req, res)) return;
    await yoga(req, res, { req, res });
  };
  return createServer((req, res) =>
    countStatements(observability.beginRequest(req, res), () => handle(req, res)),
  );
}

/** /healthz: the process is up. /readyz: it can serve (the database answers; not shutting down). */
async function serveOwnRoute(
  req: IncomingMessage,
  res: ServerResponse,
  health: Health,
  observability: Observability,
): Promise<boolean> {
  const path = (req.url ?? "").split("?")[0] ?? "";
  if (req.method === "GET" && (await serveGraphiQLAsset(path, res))) return true;
  if (path === "/favicon.ico" && (req.method === "GET" || req.method === "HEAD")) {
    serveFavicon(res);
    return true;
  }
  if (path === "/metrics") {
    await observability.serveMetrics(req, res);
    return true;
  }
  if (path === "/healthz") {
    res.writeHead(200, { "content-type": "application/json" }).end('{"status":"ok"}');
    return true;
  }
  if (path === "/readyz") {
    try {
      if (health.stopping()) throw new Error("shutting down");
      await health.ready();
      res.writeHead(200, { "content-type": "application/json" }).end('{"status":"ready"}');
    } catch {
      res.writeHead(503, { "content-type": "application/json" }).end('{"status":"unavailable"}');
    }
    return true;
  }
  return false;
}

/**
 * Stops taking connections and waits for in-flight requests; keep-alive connections are closed as
 * they become idle, and whatever is still open after `graceMs` is cut.
 */
export async function closeHttpServer(server: Server, graceMs: number): Promise<void> {
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  const idle = setInterval(() => server.closeIdleConnections(), 50);
  server.closeIdleConnections();
  const timer = setTimeout(() => server.closeAllConnections(), graceMs);
  await closed;
  clearTimeout(timer);
  clearInterval(idle);
}
