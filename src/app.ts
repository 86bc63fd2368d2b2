// buildApp(): composes the process — the database (embedded or not), the services, the job runners,
// HTTP with GraphQL and graphql-ws on one port, and the SMTP listener — into { start, stop }.
// docs/architecture.md draws the map.
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { Authenticator } from "./auth/authenticator.ts";
import { RateLimiter } from "./auth/rate-limit.ts";
import { Clock } from "./clock.ts";
import type { Config } from "./config.ts";
import { createDatabase, type DatabaseHandle } from "./db/database.ts";
import { type EmbeddedPostgres, startEmbeddedPostgres } from "./db/embedded.ts";
import { PgListener } from "./db/listener.ts";
import { migrateToLatest } from "./db/migrate.ts";
import { EventBus } from "./events/bus.ts";
import { createIngestQueue } from "./inbound/group-commit.ts";
import type { InboundServices } from "./inbound/ingest.ts";
import { createSmtpListener, type SmtpListener } from "./inbound/smtp-server.ts";
import { JobOutbox } from "./jobs/outbox.ts";
import { type JobWorker, migrateJobs, startWorker } from "./jobs/worker.ts";
import { createLogger, type Logger } from "./logger.ts";
import { mcpTools } from "./mcp/catalog.ts";
import { describeOutboundRoute } from "./outbound/capture.ts";
import { FanOut } from "./schema/fan-out.ts";
import { SharedResults } from "./schema/shared-results.ts";
import { presentResult } from "./server/errors.ts";
import { fileRoute } from "./server/files.ts";
import { closeHttpServer, createHttpServer } from "./server/http.ts";
import { jobRunners } from "./server/jobs.ts";
import { mcpRoute } from "./server/mcp.ts";
import { Observability } from "./server/observability.ts";
import type { Tracing } from "./server/tracing.ts";
import { attachWebSockets, type WebSockets } from "./server/websocket.ts";
import { buildYoga } from "./server/yoga.ts";
import { StartupError } from "./startup-error.ts";

export { WS_SERVICE_UNAVAILABLE, WS_UNAUTHORIZED } from "./server/websocket.ts";
export { StartupError } from "./startup-error.ts";

export interface App {
  /** Starts everything; resolves once the port is listening. */
  start(): Promise<{ url: string; port: number; smtpPort: number | null }>;
  /** Stops accepting, lets in-flight requests finish, then closes the database (and the embedded server). */
  stop(): Promise<void>;
  readonly services: InboundServices;
  /** Subscription events executed once per audience (executions() counts them). */
  readonly sharedResults: SharedResults;
  /** WebSocket subscriptions served in groups of one visibility (groupCount() counts them). */
  readonly fanOut: FanOut;
}

/** Binds `listen`, turning "address in use" and "permission denied" into a StartupError naming `variable`. */
async function bindOrExplain<T>(
  what: string,
  variable: string,
  host: string,
  port: number,
  listen: () => Promise<T>,
): Promise<T> {
  try {
    return await listen();
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code === "EADDRINUSE") {
      throw new StartupError(
        `${what} port ${port} on ${host} is already in use (another Mailroom?): stop that process or set ${variable} to a free port`,
      );
    }
    if (code === "EACCES") {
      throw new StartupError(
        `${what} port ${port} on ${host} needs privileges this process lacks: set ${variable} to a port above 1023`,
      );
    }
    if (code === "EADDRNOTAVAIL") {
      throw new StartupError(
        `${what} cannot listen on ${host}: no interface has that address (check HOST or SMTP_HOST)`,
      );
    }
    throw error;
  }
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

export function buildApp(config: Config, options: BuildOptions = {}): App {
  const logger = options.logger ?? createLogger(config);
  let embedded: EmbeddedPostgres | undefined;
  let database: DatabaseHandle | undefined;
  let listener: PgListener | undefined;
  let httpServer: Server | undefined;
  let webSockets: WebSockets | undefined;
  let smtp: SmtpListener | undefined;
  let worker: JobWorker | undefined;
  let jobOutbox: JobOutbox | undefined;
  let tracing: Tracing | undefined;
  let stopping: Promise<void> | undefined;
  const services = {} as InboundServices;
  const sharedResults = new SharedResults();
  const fanOut = new FanOut(sharedResults, (result) => presentResult(result, config.development));
  const observability = new Observability(config, logger);

  /** The database, migrated, with its pool and this node's LISTEN connection. */
  async function openDatabase(): Promise<void> {
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
  }

  async function startServices(db: DatabaseHandle, pgListener: PgListener): Promise<void> {
    const authenticator = new Authenticator(db.db, { logger, pepper: config.tokenPepper });
    await authenticator.attach(pgListener);
    const events = new EventBus(logger, observability.eventDelivered);
    events.attach(db.pool);
    Object.assign(services, {
      config,
      db: db.db,
      logger,
      authenticator,
      events,
      clock: new Clock(),
      statementCount: db.statementCount,
      statementsOf: (requestId: string) => observability.statementsOf(requestId),
      rateLimiter: new RateLimiter(config, logger),
      ingestQueue: createIngestQueue(db.db, logger.child({ component: "ingest" }), {
        timeoutMs: config.mailStoreTimeoutMs,
        ...(config.ingestGroupCommit ? {} : { maxCopies: 1, maxTransactions: Number.POSITIVE_INFINITY }),
      }),
    } satisfies InboundServices);
  }

  return {
    services,
    sharedResults,
    fanOut,
    async start() {
      if (config.otlpTracesUrl !== undefined) {
        // Imported only when configured: without the variable nothing of OpenTelemetry is loaded.
        // First: the pool binds each connection's query() as it opens (src/db/database.ts), so pg
        // must be instrumented before the first one.
        const { startTracing } = await import("./server/tracing.ts");
        tracing = await startTracing(config.otlpTracesUrl, logger);
      }
      await openDatabase();
      const db = database as DatabaseHandle;
      await startServices(db, listener as PgListener);
      observability.attachDatabase(db.pool);
      // Jobs left by a previous run start now; so do those it queued but did not move.
      worker = await startWorker(db.pool, config, jobRunners(services), logger);
      jobOutbox = new JobOutbox(db.pool, logger);
      jobOutbox.start();

      const yoga = buildYoga(
        config,
        services,
        sharedResults,
        fanOut,
        logger,
        observability,
        tracing?.plugins,
      );
      const server = createHttpServer(
        yoga,
        {
          stopping: () => stopping !== undefined,
          ready: () => db.ping(config.databaseTimeoutMs),
        },
        observability,
        [
          fileRoute(services, logger.child({ component: "files" })),
          mcpRoute(yoga, services, config, mcpTools(), logger.child({ component: "mcp" })),
        ],
      );
      httpServer = server;
      await bindOrExplain(
        "HTTP",
        "PORT",
        config.host,
        config.port,
        () =>
          new Promise<void>((resolve, reject) => {
            server.once("error", reject);
            server.listen(config.port, config.host, () => {
              server.off("error", reject);
              resolve();
            });
          }),
      );
      // After listen: a WebSocket server attached earlier would report a taken port again, with a stack.
      webSockets = attachWebSockets(server, yoga, services, config, logger, observability);
      const { port } = server.address() as AddressInfo;
      const host = config.host.includes(":") ? `[${config.host}]` : config.host;
      const appUrl = `http://${host}:${port}`;
      // SMTP last, once everything storing mail needs is up; "ready" below means both ports listen.
      let smtpPort: number | null = null;
      const wantedSmtpPort = options.smtpPort ?? (config.smtpPort === 0 ? undefined : config.smtpPort);
      if (wantedSmtpPort !== undefined) {
        const listener = createSmtpListener(services, {
          port: wantedSmtpPort,
          logger,
          onReply: observability.smtpReply,
        });
        smtp = listener;
        smtpPort = (
          await bindOrExplain("SMTP", "SMTP_PORT", config.smtpHost, wantedSmtpPort, () => listener.start())
        ).port;
      }
      const outbound = describeOutboundRoute(config);
      logger[outbound.level]({ component: "outbound" }, outbound.message);
      logger.info({ url: `${appUrl}/graphql` }, `Mailroom is ready: GraphiQL at ${appUrl}/graphql`);
      return { url: appUrl, port, smtpPort };
    },
    stop() {
      stopping ??= (async () => {
        const grace = options.shutdownGraceMs ?? 10_000;
        // Stops taking mail now; messages in DATA commit and get their 250 before the database closes.
        const smtpStopped = smtp?.stop(grace);
        if (httpServer) {
          const closed = closeHttpServer(httpServer, grace);
          webSockets?.close();
          await closed;
        }
        await smtpStopped;
        // Jobs under way finish (their work commits) before the database goes.
        services.events?.stop();
        await worker?.stop();
        // After the jobs: what they queued is moved too (a node that stops short leaves it to a sweep).
        await jobOutbox?.stop();
        await services.rateLimiter?.close();
        await listener?.stop();
        await database?.destroy();
        await embedded?.stop();
        await tracing?.shutdown();
        logger.info("Mailroom stopped");
      })();
      return stopping;
    },
  };
}
