// Entry point: config → buildApp → start; SIGINT/SIGTERM stop it gracefully.
import { buildApp, StartupError } from "./app.ts";
import { ConfigError, loadConfig } from "./config.ts";
import { createLogger } from "./logger.ts";

let config: ReturnType<typeof loadConfig>;
try {
  config = loadConfig();
} catch (error) {
  if (error instanceof ConfigError) {
    process.stderr.write(`${error.message}\n`);
    process.exit(78); // EX_CONFIG
  }
  throw error;
}

const logger = createLogger(config);
const app = buildApp(config, {
  logger,
  // One line says why; exiting non-zero lets a supervisor start a fresh process, which starts the
  // embedded PostgreSQL anew (on a free port if its own is taken). The few seconds of stop() close
  // the ports, so that clients see refused connections rather than hangs.
  onFatal: (error) => {
    logger.fatal(`${error.message}; exiting so that a supervisor starts Mailroom again`);
    process.exitCode = 1;
    setTimeout(() => process.exit(1), 5_000);
    app.stop().finally(() => process.exit(1));
  },
});

// npm and the terminal may both deliver the same Ctrl-C; only a signal repeated later forces an exit.
let firstSignalAt: number | undefined;
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => {
    if (firstSignalAt !== undefined) {
      if (Date.now() - firstSignalAt < 2_000) return;
      logger.warn("signal repeated: exiting now");
      process.exit(1);
    }
    firstSignalAt = Date.now();
    logger.info({ signal }, "shutting down");
    app.stop().then(
      () => process.exit(0),
      (error: unknown) => {
        logger.error({ err: error }, "shutdown failed");
        process.exit(1);
      },
    );
  });
}

try {
  await app.start();
} catch (error) {
  // A reason the operator can fix is one line that says what to do; anything else keeps its stack.
  if (error instanceof StartupError) logger.fatal(`Mailroom could not start: ${error.message}`);
  else logger.fatal({ err: error }, "Mailroom could not start");
  await app.stop().catch(() => {});
  process.exit(1);
}
