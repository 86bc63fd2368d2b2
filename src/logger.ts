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

export function createLogger(config: Pick<Config, "logLevel">) {
  return pino({ level: config.logLevel, redact: { paths: REDACT, censor: "[redacted]" } });
}

export type { Logger } from "pino";
