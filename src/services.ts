// The process-wide dependencies every service function receives first: built once by buildApp().
import type { Authenticator } from "./auth/authenticator.ts";
import type { RateLimiter } from "./auth/rate-limit.ts";
import type { Clock } from "./clock.ts";
import type { Config } from "./config.ts";
import type { Db } from "./db/database.ts";
import type { EventBus } from "./events/bus.ts";
import type { Logger } from "./logger.ts";

/** Process-wide dependencies, built once by buildApp(). */
export interface Services {
  config: Config;
  db: Db;
  logger: Logger;
  authenticator: Authenticator;
  /** This node's fan-out of committed events to its subscribers. */
  events: EventBus;
  clock: Clock;
  /** Every SQL statement of the process so far (the pool's, through Kysely). */
  statementCount: () => number;
  /**
   * The SQL statements of one recent HTTP request, by its X-Request-Id (undefined when unknown or
   * too old): counted in the request's own asynchronous context, so work running beside it is not.
   */
  statementsOf: (requestId: string) => number | undefined;
  /** Request limits (memory, or Redis shared by every node). */
  rateLimiter: RateLimiter;
}
