import { pino } from "pino";
import type { Config } from "./config.ts";

// Credentials travel in these places; pino replaces them before a line is written.
const REDACT = [
  "req.headers.authorization",
  "req.headers.cookie",
  'res.headers["set-cookie"]',
  "*.password",
  "*.apiKey",
  "*.secret",
  "*.token",
];

/**
 * JSON lines, or with LOG_FORMAT=pretty (or `auto` on a terminal) pino-pretty's coloured lines. Both
 * pass through the same redaction.
 */
export function createLogger(config: Pick<Config, "logLevel"> & Partial<Pick<Config, "logFormat">>) {
  const format = config.logFormat ?? "json";
  const pretty = format === "pretty" || (format === "auto" && process.stdout.isTTY === true);
  return pino({
    level: config.logLevel,
    redact: { paths: REDACT, censor: "[redacted]" },
    ...(pretty
      ? {
          transport: {
            target: "pino-pretty",
            options: {
              colorize: process.stdout.isTTY === true,
              translateTime: "SYS:HH:MM:ss.l",
              ignore: "pid,hostname",
            },
          },
        }
      : {}),
  });
}

export type { Logger } from "pino";
