// Every environment variable Mailroom reads, parsed once. Nothing else reads process.env.
import { isIP } from "node:net";
import path from "node:path";
import { z } from "zod";

const booleanString = z
  .enum(["true", "false", "1", "0", "yes", "no"], { error: "expected true or false" })
  .transform((value) => value === "true" || value === "1" || value === "yes");

const integer = (min: number, max: number) =>
  z
    .string()
    .regex(/^\d+$/, { error: `expected a whole number from ${min} to ${max}` })
    .transform(Number)
    .pipe(
      z
        .number()
        .min(min, { error: `expected a whole number from ${min} to ${max}` })
        .max(max, { error: `expected a whole number from ${min} to ${max}` }),
    );

const url = (protocols: string[]) =>
  z.string().refine(
    (value) => {
      try {
        return protocols.includes(new URL(value).protocol);
      } catch {
        return false;
      }
    },
    { error: `expected a URL starting with ${protocols.map((p) => `${p}//`).join(" or ")}` },
  );

const domainName = z
  .string()
  .transform((value) => value.toLowerCase())
  .pipe(
    z
      .string()
      .regex(/^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/, {
        error: "expected a domain name such as mail.example.com",
      }),
  );

/** `host[:port]` DNS servers, comma-separated: IPv4, IPv4:port, IPv6 or [IPv6]:port (addresses, not names). */
const dnsServers = z
  .string()
  .transform((value) =>
    value
      .split(",")
      .map((server) => server.trim())
      .filter((server) => server !== ""),
  )
  .refine((servers) => servers.length > 0 && servers.every(isDnsServer), {
    error: "expected comma-separated DNS server addresses such as 1.1.1.1,[2606:4700::1111]:53",
  });

function isDnsServer(server: string): boolean {
  const bracketed = /^\[([^\]]+)\](?::(\d{1,5}))?$/.exec(server);
  if (bracketed) return isIP(bracketed[1] ?? "") === 6 && validPort(bracketed[2]);
  if (isIP(server) !== 0) return true;
  const [host, port, ...rest] = server.split(":");
  return rest.length === 0 && isIP(host ?? "") === 4 && validPort(port);
}

function validPort(port: string | undefined): boolean {
  return port === undefined || (/^\d{1,5}$/.test(port) && Number(port) >= 1 && Number(port) <= 65535);
}

const environmentSchema = z.object({
  PORT: integer(0, 65535).default(4000),
  HOST: z.string().min(1, { error: "expected a host name or address" }).default("127.0.0.1"),
  SMTP_PORT: integer(0, 65535).default(2525),
  DATABASE_URL: url(["postgres:", "postgresql:"]).optional(),
  DATA_DIR: z.string().min(1, { error: "expected a directory path" }).default("./.data"),
  MAIL_DOMAIN: domainName.default("mailroom.localhost"),
  SMTP_RELAY_URL: url(["smtp:", "smtps:"]).optional(),
  REDIS_URL: url(["redis:", "rediss:"]).optional(),
  RATE_LIMIT_PER_MINUTE: integer(0, 10_000_000).default(600),
  ALLOW_PRIVATE_WEBHOOK_URLS: booleanString.default(false),
  WORKER_CONCURRENCY: integer(1, 1000).default(4),
  TOKEN_PEPPER: z.string().min(16, { error: "expected at least 16 characters" }).optional(),
  WEBHOOK_SECRET_KEY: z.string().min(32, { error: "expected at least 32 characters" }).optional(),
  DNS_SERVERS: dnsServers.optional(),
  MX_HOST: domainName.optional(),
  LOG_LEVEL: z
    .enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"], {
      error: "expected one of fatal, error, warn, info, debug, trace, silent",
    })
    .default("info"),
  NODE_ENV: z.string().default("development"),
});

export interface Config {
  port: number;
  host: string;
  smtpPort: number;
  databaseUrl: string | undefined;
  dataDir: string;
  mailDomain: string;
  smtpRelayUrl: string | undefined;
  redisUrl: string | undefined;
  rateLimitPerMinute: number;
  allowPrivateWebhookUrls: boolean;
  workerConcurrency: number;
  /** Optional server secret mixed into token hashes (HMAC-SHA256); changing it invalidates every key. */
  tokenPepper: string | undefined;
  /**
   * Server key (≥ 32 characters) from which webhook signing secrets are derived; unset: a random key
   * kept in `DATA_DIR/webhook-secret.key`. Every node must share it (see src/webhooks/secret.ts).
   */
  webhookSecretKey: string | undefined;
  /** DNS servers for domain verification (`host[:port]`); unset: the system's resolvers. */
  dnsServers: string[] | undefined;
  /** The host custom domains point their MX record at; unset: MAIL_DOMAIN. */
  mxHost: string | undefined;
  logLevel: "fatal" | "error" | "warn" | "info" | "debug" | "trace" | "silent";
  production: boolean;
}

/** A configuration error: its message is one line naming the variable and what it expected. */
export class ConfigError extends Error {
  override name = "ConfigError";
}

export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  // An empty variable means "unset", as in most twelve-factor tools.
  const present = Object.fromEntries(
    Object.keys(environmentSchema.shape).flatMap((name) => {
      const value = env[name];
      return value === undefined || value === "" ? [] : [[name, value]];
    }),
  );
  const parsed = environmentSchema.safeParse(present);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const name = String(issue?.path[0] ?? "environment");
    const given = present[name];
    throw new ConfigError(
      `Invalid configuration: ${name} ${issue?.message ?? "is invalid"}${given === undefined ? "" : `, got ${JSON.stringify(given)}`}`,
    );
  }
  const value = parsed.data;
  return {
    port: value.PORT,
    host: value.HOST,
    smtpPort: value.SMTP_PORT,
    databaseUrl: value.DATABASE_URL,
    dataDir: path.resolve(value.DATA_DIR),
    mailDomain: value.MAIL_DOMAIN,
    smtpRelayUrl: value.SMTP_RELAY_URL,
    redisUrl: value.REDIS_URL,
    rateLimitPerMinute: value.RATE_LIMIT_PER_MINUTE,
    allowPrivateWebhookUrls: value.ALLOW_PRIVATE_WEBHOOK_URLS,
    workerConcurrency: value.WORKER_CONCURRENCY,
    tokenPepper: value.TOKEN_PEPPER,
    webhookSecretKey: value.WEBHOOK_SECRET_KEY,
    dnsServers: value.DNS_SERVERS,
    mxHost: value.MX_HOST,
    logLevel: value.LOG_LEVEL,
    production: value.NODE_ENV === "production",
  };
}
