// buildApp(): HTTP (GraphQL, GraphiQL, SSE, health) and graphql-ws on one port → { start, stop }.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { GraphQLError } from "graphql";
import { useServer } from "graphql-ws/use/ws";
import { createYoga, type YogaServerInstance } from "graphql-yoga";
import { type WebSocket, WebSocketServer } from "ws";
import { Authenticator, type AuthInvalidation, concerns } from "./auth/authenticator.ts";
import {
  corsOptions,
  InvalidCredential,
  originMayUseSession,
  readCookie,
  resolvePrincipal,
  SESSION_COOKIE,
  useAuthentication,
  useCookieCsrfPrevention,
} from "./auth/http.ts";
import type { AuthenticatedPrincipal, Principal } from "./auth/principal.ts";
import { Clock } from "./clock.ts";
import type { Config } from "./config.ts";
import { type Context, createContext, type Services } from "./context.ts";
import { createDatabase, type DatabaseHandle } from "./db/database.ts";
import { type EmbeddedPostgres, startEmbeddedPostgres } from "./db/embedded.ts";
import { isDatabaseUnavailable } from "./db/errors.ts";
import { migrateToLatest } from "./db/migrate.ts";
import { presentError, unauthenticated } from "./errors.ts";
import { EventBus } from "./events/bus.ts";
import { PgListener } from "./events/pg-listener.ts";
import { SharedResults, useSharedSubscriptionResults } from "./events/shared-results.ts";
import { renderLocalGraphiQL, serveGraphiQLAsset } from "./graphiql.ts";
import { maxRequestBodyBytes, useOperationLimits } from "./http/armor.ts";
import { useRequestBodyLimit } from "./http/body-limit.ts";
import {
  authenticateOnce,
  clientAddress,
  limitOperation,
  RateLimiter,
  useRateLimit,
} from "./http/rate-limit.ts";
import { limitUnauthenticatedFrames, setFrameLimit } from "./http/websocket-frames.ts";
import { jobRunners } from "./jobs/tasks.ts";
import { type JobWorker, migrateJobs, startWorker } from "./jobs/worker.ts";
import { createLogger, type Logger } from "./logger.ts";
import { createIngestQueue } from "./mail/group-commit.ts";
import { createSmtpListener, type SmtpListener } from "./mail/smtp-server.ts";
import { schema, schemaWithoutAuthorization } from "./schema/index.ts";
import { useInputRules } from "./schema/input-rules.ts";
import { clearedCookie } from "./users/service.ts";

/** graphql-ws close code for a refused or revoked credential (PERMISSIONS.md). */
export const WS_UNAUTHORIZED = 4401;
/** graphql-ws close code when the database is away: like HTTP 503, and clients retry it (4401 they do not). */
export const WS_SERVICE_UNAVAILABLE = 4503;

export interface App {
  /** Starts everything; resolves once the port is listening. */
  start(): Promise<{ url: string; port: number; smtpPort: number | null }>;
  /** Stops accepting, lets in-flight requests finish, then closes the database (and the embedded server). */
  stop(): Promise<void>;
  readonly services: Services;
  /** Subscription events executed once per audience (executions() counts them). */
  readonly sharedResults: SharedResults;
}

export interface BuildOptions {
  logger?: Logger;
  /** How long stop() waits for in-flight requests before closing their connections. */
  shutdownGraceMs?: number;
  /** Overrides `config.smtpPort` (where 0 disables SMTP): 0 here binds an ephemeral port (tests). */
  smtpPort?: number;
  /**
   * The process cannot go on: the embedded PostgreSQL died and could not be restarted. Unset: the
   * reason is logged. src/main.ts logs it and exits non-zero, so that a supervisor starts afresh.
   */
  onFatal?: (error: Error) => void;
}

interface ServerContext {
  req?: IncomingMessage;
  res?: ServerResponse;
  /** Set by the WebSocket layer, which authenticates once at connection_init. */
  wsPrincipal?: Principal;
  wsClientIp?: string;
}

type WsExtra = {
  principal?: AuthenticatedPrincipal;
  expiryTimer?: NodeJS.Timeout;
};

export function buildApp(config: Config, options: BuildOptions = {}): App {
  const logger = options.logger ?? createLogger(config);
  let embedded: EmbeddedPostgres | undefined;
  let database: DatabaseHandle | undefined;
  let listener: PgListener | undefined;
  let httpServer: Server | undefined;
  let wsServer: WebSocketServer | undefined;
  let smtp: SmtpListener | undefined;
  let worker: JobWorker | undefined;
  const sockets = new Map<WebSocket, WsExtra>();
  let stopping: Promise<void> | undefined;

  const services = {} as Services;
  const sharedResults = new SharedResults();

  function buildYoga(): YogaServerInstance<ServerContext, Context> {
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
        // Subscriptions over SSE: a fetch, which carries the Headers tab and the session cookie alike
        // (a browser WebSocket can carry no header, and GraphiQL sends it no connection parameters).
        subscriptionsProtocol: "SSE",
        credentials: "same-origin",
        // Our own page proves itself to the cookie's CSRF check (src/auth/http.ts) on every request,
        // the SSE stream included; a page of another origin cannot send it without a preflight.
        additionalHeaders: { "x-graphql-yoga-csrf": "graphiql" },
      },
      cors: corsOptions(config.corsOrigins),
      renderGraphiQL: renderLocalGraphiQL,
      plugins: [
        useRequestBodyLimit(maxRequestBodyBytes(config)),
        useRateLimit(services),
        useOperationLimits({ blockFieldSuggestions: !config.development }),
        useInputRules(),
        useCookieCsrfPrevention(config.corsOrigins),
        useAuthentication(),
        useSharedSubscriptionResults(sharedResults),
      ],
      context: async (initial) => {
        if (initial.wsPrincipal) {
          return createContext(services, initial.wsPrincipal, { clientIp: initial.wsClientIp });
        }
        const request = (initial as unknown as { request: Request }).request;
        const sessionToken = readCookie(request.headers.get("cookie"), SESSION_COOKIE);
        try {
          // The rate limiter has usually authenticated this request already.
          const principal = await authenticateOnce(services.authenticator, initial.req, request);
          return createContext(services, principal, {
            setCookie: (cookie) => initial.res?.appendHeader("Set-Cookie", cookie),
            foreignOrigin: !originMayUseSession(request, config.corsOrigins),
            secure: isSecureRequest(request),
            clientIp: clientAddress(initial.req),
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

  async function handleOwnRoutes(req: IncomingMessage, res: ServerResponse): Promise<boolean> {
    const path = (req.url ?? "").split("?")[0] ?? "";
    if (req.method === "GET" && (await serveGraphiQLAsset(path, res))) return true;
    if (path === "/healthz") {
      res.writeHead(200, { "content-type": "application/json" }).end('{"status":"ok"}');
      return true;
    }
    if (path === "/readyz") {
      try {
        if (stopping || !database) throw new Error("shutting down");
        await database.ping(config.databaseTimeoutMs);
        res.writeHead(200, { "content-type": "application/json" }).end('{"status":"ready"}');
      } catch {
        res.writeHead(503, { "content-type": "application/json" }).end('{"status":"unavailable"}');
      }
      return true;
    }
    return false;
  }

  function attachWebSockets(server: Server, yoga: YogaServerInstance<ServerContext, Context>) {
    // A frame is a request: the HTTP body limit holds (ws's own default is 100 MiB).
    wsServer = new WebSocketServer({
      server,
      path: yoga.graphqlEndpoint,
      maxPayload: maxRequestBodyBytes(config),
    });
    const refuse = (socket: WebSocket) => socket.close(WS_UNAUTHORIZED, "Unauthorized");
    const unavailable = (socket: WebSocket) => socket.close(WS_SERVICE_UNAVAILABLE, "Service unavailable");
    useServer<Record<string, unknown> | undefined, WsExtra>(
      {
        onConnect: async (ctx) => {
          const params = ctx.connectionParams ?? {};
          const authorization = params.Authorization ?? params.authorization;
          try {
            const principal =
              typeof authorization === "string"
                ? await resolvePrincipal(services.authenticator, { authorization })
                : undefined;
            if (!principal || principal.kind === "anonymous") throw new InvalidCredential();
            ctx.extra.principal = principal;
            setFrameLimit(ctx.extra.socket, maxRequestBodyBytes(config));
            sockets.set(ctx.extra.socket, ctx.extra);
            scheduleExpiry(ctx.extra.socket, ctx.extra);
            return true;
          } catch (error) {
            if (isDatabaseUnavailable(error)) unavailable(ctx.extra.socket);
            else refuse(ctx.extra.socket);
            return false;
          }
        },
        onClose: (ctx) => {
          clearTimeout(ctx.extra.expiryTimer);
          sockets.delete(ctx.extra.socket);
        },
        execute: (args) => (args.rootValue as { execute: typeof import("graphql").execute }).execute(args),
        subscribe: (args) =>
          (args.rootValue as { subscribe: typeof import("graphql").subscribe }).subscribe(args),
        onSubscribe: async (ctx, _id, payload) => {
          const clientIp = clientAddress(ctx.extra.request);
          const limited = await limitOperation(services.rateLimiter, ctx.extra.principal ?? null, clientIp);
          if (limited) return [limited];
          const enveloped = yoga.getEnveloped({
            wsPrincipal: ctx.extra.principal,
            wsClientIp: clientIp,
          } as ServerContext);
          let document: ReturnType<typeof enveloped.parse>;
          try {
            document = enveloped.parse(payload.query);
          } catch (error) {
            // A syntax error or an over-long query fails this operation, not the whole connection.
            if (error instanceof GraphQLError) return [error];
            throw error;
          }
          const args = {
            schema: enveloped.schema,
            operationName: payload.operationName,
            document,
            variableValues: payload.variables,
            contextValue: await enveloped.contextFactory(),
            rootValue: { execute: enveloped.execute, subscribe: enveloped.subscribe },
          };
          const errors = enveloped.validate(args.schema, args.document);
          return errors.length > 0 ? errors : args;
        },
      },
      wsServer,
    );
    limitUnauthenticatedFrames(wsServer, logger);
  }

  function scheduleExpiry(socket: WebSocket, extra: WsExtra) {
    clearTimeout(extra.expiryTimer);
    const expiresAt = extra.principal?.expiresAt;
    if (!expiresAt) return;
    const delay = Math.min(Math.max(expiresAt.getTime() - Date.now(), 0), 2 ** 31 - 1);
    extra.expiryTimer = setTimeout(() => {
      if (extra.principal?.expiresAt && extra.principal.expiresAt.getTime() <= Date.now()) {
        socket.close(WS_UNAUTHORIZED, "Unauthorized");
      } else {
        scheduleExpiry(socket, extra);
      }
    }, delay);
  }

  /** A revocation on any node: re-check the open connections it may concern, close those now invalid. */
  function onRevoked(change: AuthInvalidation) {
    for (const [socket, extra] of sockets) {
      const principal = extra.principal;
      if (!principal || !concerns(change, principal)) continue;
      const close = () => socket.close(WS_UNAUTHORIZED, "Unauthorized");
      services.authenticator.refresh(principal).then(
        (fresh) => {
          if (!fresh) return close();
          extra.principal = fresh;
          scheduleExpiry(socket, extra);
        },
        // Unknown is not revoked: the client reconnects and is asked again, rather than told its key is bad.
        (error: unknown) =>
          isDatabaseUnavailable(error)
            ? socket.close(WS_SERVICE_UNAVAILABLE, "Service unavailable")
            : close(),
      );
    }
  }

  return {
    services,
    sharedResults,
    async start() {
      let url = config.databaseUrl;
      if (!url) {
        embedded = await startEmbeddedPostgres({ dataDir: config.dataDir, logger });
        url = embedded.url;
        const onFatal = options.onFatal ?? ((error: Error) => logger.fatal(error.message));
        embedded.supervise({ onGiveUp: onFatal });
      }
      // Migrations (ours, then graphile-worker's) may rebuild large tables: their own connection,
      // without the statement timeout that bounds everything else.
      const migrations = createDatabase(url, { max: 1, preparedStatements: false });
      try {
        await migrateToLatest(migrations.db);
        await migrateJobs(migrations.pool);
      } finally {
        await migrations.destroy();
      }
      database = createDatabase(url, {
        preparedStatements: config.databasePreparedStatements,
        connectTimeoutMs: config.databaseTimeoutMs,
        statementTimeoutMs: config.statementTimeoutMs,
      });
      listener = new PgListener(url, logger, config.databaseTimeoutMs);
      await listener.start();

      const authenticator = new Authenticator(database.db, { logger, pepper: config.tokenPepper });
      await authenticator.attach(listener);
      authenticator.on("revoked", onRevoked);
      const events = new EventBus(logger);
      await events.attach(listener);
      Object.assign(services, {
        config,
        db: database.db,
        logger,
        authenticator,
        events,
        clock: new Clock(),
        statementCount: database.statementCount,
        rateLimiter: new RateLimiter(config, logger),
        ingestQueue: createIngestQueue(database.db, logger.child({ component: "ingest" }), {
          timeoutMs: config.mailStoreTimeoutMs,
        }),
      } satisfies Services);
      // Jobs left by a previous run start now; graphile-worker installs or upgrades its schema first.
      worker = await startWorker(database.pool, config, jobRunners(services), logger);

      const yoga = buildYoga();
      httpServer = createServer(async (req, res) => {
        if (await handleOwnRoutes(req, res)) return;
        if (stopping) res.setHeader("Connection", "close");
        await yoga(req, res, { req, res });
      });
      attachWebSockets(httpServer, yoga);
      const server = httpServer;
      await new Promise<void>((resolve, reject) => {
        server.once("error", reject);
        server.listen(config.port, config.host, () => resolve());
      });
      const { port } = server.address() as AddressInfo;
      const host = config.host.includes(":") ? `[${config.host}]` : config.host;
      const appUrl = `http://${host}:${port}`;
      // SMTP last, once everything storing mail needs is up; "ready" below means both ports listen.
      let smtpPort: number | null = null;
      const wantedSmtpPort = options.smtpPort ?? (config.smtpPort === 0 ? undefined : config.smtpPort);
      if (wantedSmtpPort !== undefined) {
        smtp = createSmtpListener(services, { port: wantedSmtpPort, logger });
        smtpPort = (await smtp.start()).port;
      }
      logger.info({ url: `${appUrl}/graphql` }, `Mailroom is ready: GraphiQL at ${appUrl}/graphql`);
      return { url: appUrl, port, smtpPort };
    },
    stop() {
      stopping ??= (async () => {
        const grace = options.shutdownGraceMs ?? 10_000;
        // Stops taking mail now; messages in DATA commit and get their 250 before the database closes.
        const smtpStopped = smtp?.stop(grace);
        if (httpServer) {
          const server = httpServer;
          const closed = new Promise<void>((resolve) => server.close(() => resolve()));
          // Keep-alive connections become idle as their last response ends: close them as they do.
          const idle = setInterval(() => server.closeIdleConnections(), 50);
          server.closeIdleConnections();
          for (const socket of sockets.keys()) socket.close(1001, "Server shutting down");
          wsServer?.close();
          const timer = setTimeout(() => server.closeAllConnections(), grace);
          await closed;
          clearTimeout(timer);
          clearInterval(idle);
        }
        await smtpStopped;
        // Jobs under way finish (their work commits) before the database goes.
        await worker?.stop();
        await services.rateLimiter?.close();
        await listener?.stop();
        await database?.destroy();
        await embedded?.stop();
        logger.info("Mailroom stopped");
      })();
      return stopping;
    },
  };
}
