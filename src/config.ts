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

/** Comma-separated origins (scheme://host[:port], nothing else), as a browser sends them in `Origin`. */
const origins = z
  .string()
  .transform((value) =>
    value
      .split(",")
      .map((origin) => origin.trim())
      .filter((origin) => origin !== ""),
  )
  .refine((list) => list.every(isOrigin), {
    error: "expected comma-separated origins such as https://app.example.com,http://localhost:5173",
  });

function isOrigin(text: string): boolean {
  try {
    const url = new URL(text);
    return (url.protocol === "https:" || url.protocol === "http:") && url.origin === text;
  } catch {
    return false;
  }
}

/**
 * The server's own address as clients reach it (scheme, host, port, and a path prefix if a proxy adds
 * one), without the trailing slash: what absolute URLs are built on.
 */
const publicUrl = z
  .string()
  .refine(
    (value) => {
      try {
        const url = new URL(value);
        return (
          (url.protocol === "https:" || url.protocol === "http:") &&
          url.username === "" &&
          url.password === "" &&
          url.search === "" &&
          url.hash === "" &&
          !value.includes("?") &&
          !value.includes("#")
        );
      } catch {
        return false;
      }
    },
    { error: "expected an http:// or https:// URL without credentials, query or fragment" },
  )
  .transform((value) => {
    const url = new URL(value);
    return `${url.origin}${url.pathname}`.replace(/\/+$/, "");
  });

/**
 * TRUST_PROXY: how many proxies stand in front of the server (a hop count), or the CIDR blocks and
 * addresses of the trusted ones, comma-separated (docs/operations.md, "Behind a proxy").
 */
const trustProxy = z.string().transform((value, ctx): TrustProxy => {
  const text = value.trim();
  if (/^\d+$/.test(text)) {
    const hops = Number(text);
    if (hops > 32) ctx.addIssue({ code: "custom", message: "expected at most 32 hops" });
    return { hops };
  }
  const cidrs = text
    .split(",")
    .map((entry) => entry.trim())
    .filter((entry) => entry !== "");
  if (cidrs.length === 0 || !cidrs.every(isAddressOrBlock)) {
    ctx.addIssue({
      code: "custom",
      message:
        "expected a hop count or comma-separated proxy addresses or CIDR blocks such as 10.0.0.0/8,::1",
    });
  }
  return { cidrs };
});

function isAddressOrBlock(entry: string): boolean {
  const [address = "", prefix, ...rest] = entry.split("/");
  const version = address.includes("%") ? 0 : isIP(address);
  if (version === 0 || rest.length > 0) return false;
  if (prefix === undefined) return true;
  return /^\d{1,3}$/.test(prefix) && Number(prefix) <= (version === 4 ? 32 : 128);
}

/** Which proxies' X-Forwarded-For to believe; null: none (the TCP peer is the client). */
export type TrustProxy = { hops: number } | { cidrs: string[] };

const environmentSchema = z.object({
  PORT: integer(0, 65535).default(4000),
  HOST: z.string().min(1, { error: "expected a host name or address" }).default("127.0.0.1"),
  SMTP_PORT: integer(0, 65535).default(2525),
  SMTP_HOST: z.string().min(1, { error: "expected a host name or address" }).optional(),
  SMTP_MAX_MESSAGE_BYTES: integer(1024, 256 * 1024 * 1024).default(25 * 1024 * 1024),
  SMTP_TLS_KEY_FILE: z.string().min(1, { error: "expected a file path" }).optional(),
  SMTP_TLS_CERT_FILE: z.string().min(1, { error: "expected a file path" }).optional(),
  DATABASE_URL: url(["postgres:", "postgresql:"]).optional(),
  DATABASE_PREPARED_STATEMENTS: booleanString.default(true),
  DATABASE_TIMEOUT_MS: integer(100, 600_000).default(5000),
  STATEMENT_TIMEOUT_MS: integer(100, 86_400_000).default(15_000),
  DATA_DIR: z.string().min(1, { error: "expected a directory path" }).default("./.data"),
  MAIL_DOMAIN: domainName.default("mailroom.localhost"),
  SMTP_RELAY_URL: url(["smtp:", "smtps:"]).optional(),
  REDIS_URL: url(["redis:", "rediss:"]).optional(),
  REDIS_KEY_PREFIX: z.string().min(1, { error: "expected a non-empty prefix" }).default("mailroom:"),
  RATE_LIMIT_PER_MINUTE: integer(0, 10_000_000).default(600),
  ALLOW_PRIVATE_WEBHOOK_URLS: booleanString.default(false),
  WORKER_CONCURRENCY: integer(1, 1000).default(4),
  HOSTED_DELIVERY_CONCURRENCY: integer(1, 1000).optional(),
  RELAY_CONCURRENCY: integer(1, 1000).optional(),
  WEBHOOK_CONCURRENCY: integer(1, 1000).optional(),
  RELAY_STEP_TIMEOUT_MS: integer(100, 600_000).default(30_000),
  RELAY_DATA_TIMEOUT_MS: integer(100, 3_600_000).default(120_000),
  RELAY_ATTEMPT_TIMEOUT_MS: integer(100, 3_600_000).default(180_000),
  MAIL_STORE_TIMEOUT_MS: integer(100, 600_000).default(30_000),
  INGEST_GROUP_COMMIT: booleanString.default(true),
  WORKER_POLL_INTERVAL_MS: integer(10, 600_000).default(2000),
  WEBHOOK_RETRY_DELAYS_MS: z
    .string()
    .regex(/^\d+(,\d+)*$/, { error: "expected comma-separated milliseconds, e.g. 5000,300000" })
    .transform((value) => value.split(",").map(Number))
    .default([5_000, 300_000, 1_800_000, 7_200_000, 18_000_000, 36_000_000, 36_000_000]),
  WEBHOOK_TIMEOUT_MS: integer(100, 120_000).default(10_000),
  MAX_OUTBOUND_BYTES: integer(1024, 256 * 1024 * 1024).default(25 * 1024 * 1024),
  MAX_INLINE_ATTACHMENT_BYTES: integer(1024, Number.MAX_SAFE_INTEGER).default(10 * 1024 * 1024),
  MAX_INLINE_BODY_BYTES: integer(1024, Number.MAX_SAFE_INTEGER).default(10 * 1024 * 1024),
  OUTBOUND_MAX_ATTEMPTS: integer(1, 100).default(25),
  OUTBOUND_RETRY_BASE_MS: integer(1, 86_400_000).optional(),
  TOKEN_PEPPER: z.string().min(16, { error: "expected at least 16 characters" }).optional(),
  WEBHOOK_SECRET_KEY: z.string().min(32, { error: "expected at least 32 characters" }).optional(),
  DNS_SERVERS: dnsServers.optional(),
  MAIL_AUTH: booleanString.default(true),
  MAIL_AUTH_DNS_TIMEOUT_MS: integer(50, 60_000).default(2_000),
  MAIL_AUTH_TIMEOUT_MS: integer(100, 300_000).default(6_000),
  MX_HOST: domainName.optional(),
  LOG_LEVEL: z
    .enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"], {
      error: "expected one of fatal, error, warn, info, debug, trace, silent",
    })
    .default("info"),
  // Unset is not development: a default start masks unexpected errors (no stack traces).
  NODE_ENV: z.string().optional(),
  BENCH_DISABLE_AUTHORIZATION: booleanString.default(false),
  CORS_ORIGINS: origins.default([]),
  FILE_URL_TTL_SECONDS: integer(1, 7 * 24 * 3600).default(3600),
  PUBLIC_URL: publicUrl.optional(),
  METRICS_TOKEN: z.string().min(16, { error: "expected at least 16 characters" }).optional(),
  OUTBOUND_MODE: z
    .enum(["relay", "capture", "refuse"], { error: "expected one of relay, capture, refuse" })
    .optional(),
  LOG_FORMAT: z
    .enum(["auto", "json", "pretty"], { error: "expected one of auto, json, pretty" })
    .default("auto"),
  TRUST_PROXY: trustProxy.optional(),
  // OpenTelemetry's own names (docs/operations.md, "Traces"); the SDK reads its other OTEL_* itself.
  OTEL_EXPORTER_OTLP_ENDPOINT: url(["http:", "https:"]).optional(),
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: url(["http:", "https:"]).optional(),
  OTEL_SDK_DISABLED: booleanString.default(false),
});

export interface Config {
  port: number;
  host: string;
  /** Inbound SMTP port; `0` disables the listener. */
  smtpPort: number;
  /** Address the SMTP listener binds; defaults to HOST. */
  smtpHost: string;
  /** Largest message accepted over SMTP (advertised as SIZE, `552` above it). */
  smtpMaxMessageBytes: number;
  /** PEM key and certificate files for STARTTLS; both or neither. Unset: STARTTLS is not offered. */
  smtpTlsKeyFile: string | undefined;
  smtpTlsCertFile: string | undefined;
  databaseUrl: string | undefined;
  /** Named prepared statements (src/db/database.ts); off behind a pooler that cannot keep them. */
  databasePreparedStatements: boolean;
  /** Longest wait for a database connection, and for /readyz's answer (docs/operations.md). */
  databaseTimeoutMs: number;
  /** PostgreSQL's statement_timeout on every application connection (docs/operations.md). */
  statementTimeoutMs: number;
  dataDir: string;
  mailDomain: string;
  smtpRelayUrl: string | undefined;
  redisUrl: string | undefined;
  /** Prefix of every key Mailroom writes to Redis, so deployments can share one Redis. */
  redisKeyPrefix: string;
  rateLimitPerMinute: number;
  allowPrivateWebhookUrls: boolean;
  /** Job slots of each worker runner whose own variable is unset (src/jobs/tasks.ts). */
  workerConcurrency: number;
  /** Slots for delivering sent mail to hosted inboxes (the `deliver-message` runner). */
  hostedDeliveryConcurrency: number;
  /** Slots for handing sent mail to SMTP_RELAY_URL (the `relay-message` runner). */
  relayConcurrency: number;
  /** Slots for webhook deliveries (the `deliver-webhook` runner). */
  webhookConcurrency: number;
  /**
   * The longest one step of a relay attempt may take: setting the session up (connecting, the
   * greeting, a STARTTLS handshake) and each command's reply.
   */
  relayStepTimeoutMs: number;
  /** The longest the message data may take to go to the relay, its final reply included. */
  relayDataTimeoutMs: number;
  /** The longest a whole relay attempt may take, whatever its steps. */
  relayAttemptTimeoutMs: number;
  /**
   * The longest inbound mail waits on the database (a recipient lookup at RCPT, storing a message,
   * storing a sent message's hosted copies) before SMTP answers 451 or the delivery is retried.
   */
  mailStoreTimeoutMs: number;
  /**
   * Inbound messages stored together share one transaction, one at a time per node (true), or each
   * has its own, all at once (false): src/inbound/group-commit.ts.
   */
  ingestGroupCommit: boolean;
  /** How often the job worker looks for jobs scheduled for later (retries); new jobs arrive by NOTIFY. */
  workerPollIntervalMs: number;
  /** Delays before each webhook retry, after an immediate first attempt (Standard Webhooks' schedule). */
  webhookRetryDelaysMs: number[];
  /** Total time one webhook attempt may take: DNS, connect, response headers and a capped body. */
  webhookTimeoutMs: number;
  /** Largest outbound message (the composed MIME, attachments included). */
  maxOutboundBytes: number;
  /** Attachment content (`contentBase64`) one response may carry; docs/limits.md. */
  maxInlineAttachmentBytes: number;
  /** Message and draft bodies (`text`, `html`) one response may carry beyond its first; docs/limits.md. */
  maxInlineBodyBytes: number;
  /** Delivery attempts of one outbound message before it bounces. */
  outboundMaxAttempts: number;
  /**
   * First retry delay of an outbound delivery, doubling per attempt (at most 6 hours); unset:
   * graphile-worker's own backoff (e^attempt seconds, capped at e^10 s ≈ 6.1 h).
   */
  outboundRetryBaseMs: number | undefined;
  /** Optional server secret mixed into token hashes (HMAC-SHA256); changing it invalidates every key. */
  tokenPepper: string | undefined;
  /**
   * Server key (≥ 32 characters) from which webhook signing secrets are derived; unset: a random key
   * kept in `DATA_DIR/webhook-secret.key`. Every node must share it (see src/webhooks/secret.ts).
   */
  webhookSecretKey: string | undefined;
  /**
   * DNS servers for domain verification and inbound authentication (`host[:port]`); unset: the
   * system's resolvers.
   */
  dnsServers: string[] | undefined;
  /** Check SPF, DKIM, DMARC and ARC of mail received over SMTP (docs/authentication.md). */
  mailAuth: boolean;
  /** The longest one DNS lookup of those checks may take before it counts as TEMPERROR. */
  mailAuthDnsTimeoutMs: number;
  /** The longest all DNS lookups of one message's checks may take together. */
  mailAuthTimeoutMs: number;
  /** The host custom domains point their MX record at; unset: MAIL_DOMAIN. */
  mxHost: string | undefined;
  logLevel: "fatal" | "error" | "warn" | "info" | "debug" | "trace" | "silent";
  production: boolean;
  /** Only `NODE_ENV=development` shows unexpected errors' details and field suggestions. */
  development: boolean;
  /**
   * Benchmarks only (bench/run.ts measures the cost of authorization): serve the schema without its
   * permission checks. Rows stay cut to the caller's TenantScope. Refused unless HOST is loopback.
   */
  benchDisableAuthorization: boolean;
  /**
   * Origins other than the server's own whose pages may call with the session cookie (credentialed
   * CORS). Every other origin gets CORS without credentials, and its cookie requests are refused.
   */
  corsOrigins: string[];
  /** Proxies whose X-Forwarded-For names the client (src/server/rate-limit.ts clientAddress). */
  trustProxy: TrustProxy | null;
  /** How long a download link (`rawUrl`, `downloadUrl`) works after it is minted; docs/downloads.md. */
  fileUrlTtlSeconds: number;
  /**
   * The server's public URL (no trailing slash), on which download links are built. Unset: the
   * origin each request reached (its Host header, and X-Forwarded-Proto); docs/downloads.md.
   */
  publicUrl: string | undefined;
  /**
   * Bearer token GET /metrics requires (always, loopback included). Unset: /metrics is served only
   * when HOST is a loopback address; docs/operations.md.
   */
  metricsToken: string | undefined;
  /**
   * How mail to outside addresses leaves (src/outbound/capture.ts, docs/mail.md). Unset: the relay
   * when SMTP_RELAY_URL is set, else refused in production and captured (logged, marked delivered)
   * elsewhere.
   */
  outboundMode: "relay" | "capture" | "refuse" | undefined;
  /** `pretty` (pino-pretty), `json`, or `auto`: pretty when stdout is a terminal. */
  logFormat: "auto" | "json" | "pretty";
  /**
   * Where OpenTelemetry traces go over OTLP/HTTP (the `/v1/traces` URL): OTEL_EXPORTER_OTLP_TRACES_ENDPOINT,
   * or OTEL_EXPORTER_OTLP_ENDPOINT with `/v1/traces` added. Unset (or OTEL_SDK_DISABLED): no tracing,
   * and nothing of OpenTelemetry is loaded (src/server/tracing.ts).
   */
  otlpTracesUrl: string | undefined;
}

/** The traces URL from OpenTelemetry's variables, as its exporters derive it. */
function otlpTracesUrl(value: {
  OTEL_EXPORTER_OTLP_ENDPOINT?: string | undefined;
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT?: string | undefined;
  OTEL_SDK_DISABLED: boolean;
}): string | undefined {
  if (value.OTEL_SDK_DISABLED) return undefined;
  if (value.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT !== undefined) return value.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT;
  if (value.OTEL_EXPORTER_OTLP_ENDPOINT === undefined) return undefined;
  return `${value.OTEL_EXPORTER_OTLP_ENDPOINT.replace(/\/+$/, "")}/v1/traces`;
}

const LOOPBACK_HOSTS = new Set(["127.0.0.1", "::1", "localhost"]);

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
  if ((value.SMTP_TLS_KEY_FILE === undefined) !== (value.SMTP_TLS_CERT_FILE === undefined)) {
    const missing = value.SMTP_TLS_KEY_FILE === undefined ? "SMTP_TLS_KEY_FILE" : "SMTP_TLS_CERT_FILE";
    throw new ConfigError(
      `Invalid configuration: ${missing} expected a file path, as SMTP_TLS_KEY_FILE and SMTP_TLS_CERT_FILE go together`,
    );
  }
  if (value.BENCH_DISABLE_AUTHORIZATION && !LOOPBACK_HOSTS.has(value.HOST)) {
    throw new ConfigError(
      `Invalid configuration: BENCH_DISABLE_AUTHORIZATION is for benchmarks on a loopback HOST only, got HOST ${JSON.stringify(value.HOST)}`,
    );
  }
  if (value.OUTBOUND_MODE === "relay" && value.SMTP_RELAY_URL === undefined) {
    throw new ConfigError(
      "Invalid configuration: OUTBOUND_MODE relay needs SMTP_RELAY_URL (smtp://user:pass@host:port), which is unset",
    );
  }
  return {
    port: value.PORT,
    host: value.HOST,
    smtpPort: value.SMTP_PORT,
    smtpHost: value.SMTP_HOST ?? value.HOST,
    smtpMaxMessageBytes: value.SMTP_MAX_MESSAGE_BYTES,
    smtpTlsKeyFile: value.SMTP_TLS_KEY_FILE === undefined ? undefined : path.resolve(value.SMTP_TLS_KEY_FILE),
    smtpTlsCertFile:
      value.SMTP_TLS_CERT_FILE === undefined ? undefined : path.resolve(value.SMTP_TLS_CERT_FILE),
    databaseUrl: value.DATABASE_URL,
    databasePreparedStatements: value.DATABASE_PREPARED_STATEMENTS,
    databaseTimeoutMs: value.DATABASE_TIMEOUT_MS,
    statementTimeoutMs: value.STATEMENT_TIMEOUT_MS,
    dataDir: path.resolve(value.DATA_DIR),
    mailDomain: value.MAIL_DOMAIN,
    smtpRelayUrl: value.SMTP_RELAY_URL,
    redisUrl: value.REDIS_URL,
    redisKeyPrefix: value.REDIS_KEY_PREFIX,
    rateLimitPerMinute: value.RATE_LIMIT_PER_MINUTE,
    allowPrivateWebhookUrls: value.ALLOW_PRIVATE_WEBHOOK_URLS,
    workerConcurrency: value.WORKER_CONCURRENCY,
    hostedDeliveryConcurrency: value.HOSTED_DELIVERY_CONCURRENCY ?? value.WORKER_CONCURRENCY,
    relayConcurrency: value.RELAY_CONCURRENCY ?? value.WORKER_CONCURRENCY,
    webhookConcurrency: value.WEBHOOK_CONCURRENCY ?? value.WORKER_CONCURRENCY,
    relayStepTimeoutMs: value.RELAY_STEP_TIMEOUT_MS,
    relayDataTimeoutMs: value.RELAY_DATA_TIMEOUT_MS,
    relayAttemptTimeoutMs: value.RELAY_ATTEMPT_TIMEOUT_MS,
    mailStoreTimeoutMs: value.MAIL_STORE_TIMEOUT_MS,
    ingestGroupCommit: value.INGEST_GROUP_COMMIT,
    workerPollIntervalMs: value.WORKER_POLL_INTERVAL_MS,
    webhookRetryDelaysMs: value.WEBHOOK_RETRY_DELAYS_MS,
    webhookTimeoutMs: value.WEBHOOK_TIMEOUT_MS,
    maxOutboundBytes: value.MAX_OUTBOUND_BYTES,
    maxInlineAttachmentBytes: value.MAX_INLINE_ATTACHMENT_BYTES,
    maxInlineBodyBytes: value.MAX_INLINE_BODY_BYTES,
    outboundMaxAttempts: value.OUTBOUND_MAX_ATTEMPTS,
    outboundRetryBaseMs: value.OUTBOUND_RETRY_BASE_MS,
    tokenPepper: value.TOKEN_PEPPER,
    webhookSecretKey: value.WEBHOOK_SECRET_KEY,
    dnsServers: value.DNS_SERVERS,
    mailAuth: value.MAIL_AUTH,
    mailAuthDnsTimeoutMs: value.MAIL_AUTH_DNS_TIMEOUT_MS,
    mailAuthTimeoutMs: value.MAIL_AUTH_TIMEOUT_MS,
    mxHost: value.MX_HOST,
    logLevel: value.LOG_LEVEL,
    production: value.NODE_ENV === "production",
    development: value.NODE_ENV === "development",
    benchDisableAuthorization: value.BENCH_DISABLE_AUTHORIZATION,
    corsOrigins: value.CORS_ORIGINS,
    fileUrlTtlSeconds: value.FILE_URL_TTL_SECONDS,
    publicUrl: value.PUBLIC_URL,
    metricsToken: value.METRICS_TOKEN,
    logFormat: value.LOG_FORMAT,
    trustProxy:
      value.TRUST_PROXY === undefined || ("hops" in value.TRUST_PROXY && value.TRUST_PROXY.hops === 0)
        ? null
        : value.TRUST_PROXY,
    outboundMode: value.OUTBOUND_MODE,
    otlpTracesUrl: otlpTracesUrl(value),
  };
}
