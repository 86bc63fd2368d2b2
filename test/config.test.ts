import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../src/config.ts";

describe("loadConfig", () => {
  it("has a default for every variable", () => {
    const config = loadConfig({});
    expect(config).toMatchObject({
      port: 4000,
      host: "127.0.0.1",
      smtpPort: 2525,
      databaseUrl: undefined,
      mailDomain: "mailroom.localhost",
      smtpRelayUrl: undefined,
      redisUrl: undefined,
      rateLimitPerMinute: 600,
      allowPrivateWebhookUrls: false,
      workerConcurrency: 4,
      hostedDeliveryConcurrency: 4,
      relayConcurrency: 4,
      webhookConcurrency: 4,
      relayStepTimeoutMs: 30_000,
      relayDataTimeoutMs: 120_000,
      relayAttemptTimeoutMs: 180_000,
      mailStoreTimeoutMs: 30_000,
      logLevel: "info",
      databasePreparedStatements: true,
      databaseTimeoutMs: 5000,
      statementTimeoutMs: 15_000,
    });
    expect(config.dataDir.endsWith(".data")).toBe(true);
  });

  it("parses every variable", () => {
    const config = loadConfig({
      PORT: "8080",
      HOST: "0.0.0.0",
      SMTP_PORT: "0",
      DATABASE_URL: "postgres://u:p@db:5432/mail",
      DATA_DIR: "/var/lib/mailroom",
      MAIL_DOMAIN: "Mail.Example.COM",
      SMTP_RELAY_URL: "smtp://user:pass@relay:587",
      REDIS_URL: "redis://127.0.0.1:6379",
      RATE_LIMIT_PER_MINUTE: "0",
      ALLOW_PRIVATE_WEBHOOK_URLS: "true",
      WORKER_CONCURRENCY: "8",
      RELAY_CONCURRENCY: "16",
      RELAY_STEP_TIMEOUT_MS: "5000",
      MAIL_STORE_TIMEOUT_MS: "2000",
      LOG_LEVEL: "debug",
      DATABASE_PREPARED_STATEMENTS: "false",
      CORS_ORIGINS: "https://app.example.com, http://localhost:5173",
      DATABASE_TIMEOUT_MS: "2000",
      STATEMENT_TIMEOUT_MS: "60000",
    });
    expect(config).toMatchObject({
      port: 8080,
      host: "0.0.0.0",
      smtpPort: 0,
      databaseUrl: "postgres://u:p@db:5432/mail",
      dataDir: "/var/lib/mailroom",
      mailDomain: "mail.example.com",
      smtpRelayUrl: "smtp://user:pass@relay:587",
      redisUrl: "redis://127.0.0.1:6379",
      rateLimitPerMinute: 0,
      allowPrivateWebhookUrls: true,
      workerConcurrency: 8,
      hostedDeliveryConcurrency: 8,
      relayConcurrency: 16,
      webhookConcurrency: 8,
      relayStepTimeoutMs: 5000,
      mailStoreTimeoutMs: 2000,
      logLevel: "debug",
      databasePreparedStatements: false,
      corsOrigins: ["https://app.example.com", "http://localhost:5173"],
      databaseTimeoutMs: 2000,
      statementTimeoutMs: 60_000,
    });
  });

  it.each([
    ["SMTP_PORT", "-1"],
    ["MAIL_DOMAIN", "not a domain"],
    ["SMTP_RELAY_URL", "http://relay"],
    ["REDIS_URL", "localhost:6379"],
    ["RATE_LIMIT_PER_MINUTE", "1.5"],
    ["WORKER_CONCURRENCY", "0"],
    ["WEBHOOK_CONCURRENCY", "many"],
    ["RELAY_ATTEMPT_TIMEOUT_MS", "10"],
    ["CORS_ORIGINS", "https://app.example.com/"],
    ["CORS_ORIGINS", "app.example.com"],
    ["CORS_ORIGINS", "*"],
    ["MAX_INLINE_ATTACHMENT_BYTES", "1023"],
    ["MAX_INLINE_ATTACHMENT_BYTES", "10MiB"],
    ["MAX_INLINE_BODY_BYTES", "1023"],
    ["DATABASE_TIMEOUT_MS", "0"],
    ["STATEMENT_TIMEOUT_MS", "15s"],
  ])("rejects %s=%s with a message naming the variable", (name, value) => {
    expect(() => loadConfig({ [name]: value })).toThrow(ConfigError);
    expect(() => loadConfig({ [name]: value })).toThrow(
      new RegExp(`^Invalid configuration: ${name} expected .*, got "`),
    );
  });

  it("bounds what one response carries: 10 MiB of attachment content and of bodies by default, any value from 1024", () => {
    expect(loadConfig({})).toMatchObject({
      maxInlineAttachmentBytes: 10 * 1024 * 1024,
      maxInlineBodyBytes: 10 * 1024 * 1024,
    });
    expect(loadConfig({ MAX_INLINE_ATTACHMENT_BYTES: "1024", MAX_INLINE_BODY_BYTES: "1024" })).toMatchObject({
      maxInlineAttachmentBytes: 1024,
      maxInlineBodyBytes: 1024,
    });
    expect(loadConfig({ MAX_INLINE_ATTACHMENT_BYTES: "1073741824" }).maxInlineAttachmentBytes).toBe(2 ** 30);
  });

  it("turns permission checks off only for benchmarks on a loopback HOST", () => {
    expect(loadConfig({}).benchDisableAuthorization).toBe(false);
    for (const host of ["127.0.0.1", "::1", "localhost"]) {
      expect(loadConfig({ BENCH_DISABLE_AUTHORIZATION: "true", HOST: host }).benchDisableAuthorization).toBe(
        true,
      );
    }
    for (const host of ["0.0.0.0", "::", "10.0.0.5", "mail.example.com"]) {
      expect(() => loadConfig({ BENCH_DISABLE_AUTHORIZATION: "1", HOST: host })).toThrow(
        /^Invalid configuration: BENCH_DISABLE_AUTHORIZATION is for benchmarks on a loopback HOST only/,
      );
    }
  });
});
