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
  statementCount: () => number;
  /** Request limits (memory, or Redis shared by every node). */
  rateLimiter: RateLimiter;
}
