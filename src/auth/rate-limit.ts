// Rate limits (docs/permissions.md, "Rate limits"): per API key, per session, per IP for anonymous callers, and much
// stricter per-IP and per-target buckets for login and agent sign-up. Counters live in memory, or
// with REDIS_URL in Redis shared by every node; when Redis cannot be reached we fail closed (503)
// rather than serve unlimited traffic, and recover as soon as it answers again.
import { createHash } from "node:crypto";
import { isIPv6 } from "node:net";
import { GraphQLError } from "graphql";
import { Redis } from "ioredis";
import {
  type RateLimiterAbstract,
  RateLimiterMemory,
  RateLimiterRedis,
  RateLimiterRes,
} from "rate-limiter-flexible";
import type { Config } from "../config.ts";
import type { Logger } from "../logger.ts";
import type { Principal } from "./principal.ts";

export const RATE_LIMIT_UNAVAILABLE_MESSAGE =
  "Rate limiting service is temporarily unavailable. Please try again later.";

/** Seconds a client is told to wait when the store is unreachable. */
const UNAVAILABLE_RETRY_AFTER = 60;

/** A Redis that does not answer within this must not hold requests: we answer 503 instead. */
const REDIS_COMMAND_TIMEOUT_MS = 1000;

export interface RateLimitPolicy {
  /** Its name in the `RateLimit-Policy` and `RateLimit` headers. */
  name: string;
  limit: number;
  windowSeconds: number;
}

/**
 * The stricter buckets: a password or code guess, or a new organization with a mail sent, costs far
 * more than a query. Per IP against one attacker guessing many targets; per target (the email, or
 * the key being verified) against many addresses guessing one.
 */
export const SENSITIVE_LIMITS = {
  login: { perIp: { limit: 10, windowSeconds: 60 }, perTarget: { limit: 10, windowSeconds: 600 } },
  agentSignUp: { perIp: { limit: 5, windowSeconds: 3600 }, perTarget: { limit: 5, windowSeconds: 3600 } },
  agentVerify: { perIp: { limit: 20, windowSeconds: 600 }, perTarget: { limit: 10, windowSeconds: 600 } },
} as const satisfies Record<string, Record<"perIp" | "perTarget", Omit<RateLimitPolicy, "name">>>;

export type SensitiveBucket = keyof typeof SENSITIVE_LIMITS;

export interface RateLimitOutcome {
  allowed: boolean;
  policy: RateLimitPolicy;
  remaining: number;
  /** Seconds until the window resets: `t` of the RateLimit header, and Retry-After when refused. */
  resetSeconds: number;
}

/** The store (Redis) could not be asked: the caller answers 503 (fail closed). */
export class RateLimitUnavailable extends Error {
  override name = "RateLimitUnavailable";
}

export class RateLimiter {
  readonly enabled: boolean;
  readonly defaultPolicy: RateLimitPolicy;
  private readonly limiters = new Map<string, RateLimiterAbstract>();
  private readonly redis: Redis | undefined;
  private readonly keyPrefix: string;
  private lastWarning = 0;

  constructor(
    config: Pick<Config, "rateLimitPerMinute" | "redisUrl" | "redisKeyPrefix">,
    private readonly logger?: Logger,
  ) {
    this.enabled = config.rateLimitPerMinute > 0;
    this.defaultPolicy = { name: "default", limit: config.rateLimitPerMinute, windowSeconds: 60 };
    this.keyPrefix = `${config.redisKeyPrefix}rl:`;
    if (this.enabled && config.redisUrl) this.redis = connectRedis(config.redisUrl, logger);
  }

  /** Counts one request of `key` against `policy`; throws RateLimitUnavailable when the store fails. */
  async consume(policy: RateLimitPolicy, key: string): Promise<RateLimitOutcome> {
    const limiter = this.limiterFor(policy);
    try {
      return outcome(policy, true, await limiter.consume(key));
    } catch (error) {
      if (error instanceof RateLimiterRes) return outcome(policy, false, error);
      this.warnUnavailable(error);
      throw new RateLimitUnavailable("rate-limit store unreachable", { cause: error });
    }
  }

  async close(): Promise<void> {
    this.redis?.disconnect();
  }

  private limiterFor(policy: RateLimitPolicy): RateLimiterAbstract {
    const id = `${policy.name}:${policy.limit}:${policy.windowSeconds}`;
    let limiter = this.limiters.get(id);
    if (!limiter) {
      const options = {
        points: policy.limit,
        duration: policy.windowSeconds,
        keyPrefix: `${this.keyPrefix}${id}`,
      };
      // No insuranceLimiter: a node counting alone would let a cluster exceed the limit; we fail closed.
      limiter = this.redis
        ? new RateLimiterRedis({ ...options, storeClient: this.redis, rejectIfRedisNotReady: true })
        : new RateLimiterMemory(options);
      this.limiters.set(id, limiter);
    }
    return limiter;
  }

  private warnUnavailable(error: unknown) {
    const now = Date.now();
    if (now - this.lastWarning < 10_000) return;
    this.lastWarning = now;
    this.logger?.warn({ err: error }, "rate-limit store unreachable: refusing requests with 503");
  }
}

function connectRedis(url: string, logger: Logger | undefined): Redis {
  const redis = new Redis(url, {
    // Fail at once while disconnected instead of queueing requests behind a dead connection.
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    commandTimeout: REDIS_COMMAND_TIMEOUT_MS,
    connectTimeout: 2000,
    // Never give up reconnecting: service resumes as soon as Redis is back.
    retryStrategy: (times) => Math.min(times * 100, 1000),
  });
  let down = false;
  // Without a listener an error event would crash the process; the 503s and one warning tell the story.
  redis.on("error", (error) => {
    if (down) return;
    down = true;
    logger?.warn({ err: error }, "rate-limit Redis connection failed; reconnecting");
  });
  redis.on("ready", () => {
    if (down) logger?.info("rate-limit Redis reachable again");
    down = false;
  });
  return redis;
}

function outcome(policy: RateLimitPolicy, allowed: boolean, res: RateLimiterRes): RateLimitOutcome {
  return {
    allowed,
    policy,
    remaining: Math.max(0, res.remainingPoints),
    resetSeconds: Math.max(1, Math.ceil(res.msBeforeNext / 1000)),
  };
}

/** IETF draft-ietf-httpapi-ratelimit-headers fields, plus Retry-After when the request was refused. */
export function rateLimitHeaders(result: RateLimitOutcome): Record<string, string> {
  const { policy } = result;
  const headers: Record<string, string> = {
    "RateLimit-Policy": `"${policy.name}";q=${policy.limit};w=${policy.windowSeconds}`,
    RateLimit: `"${policy.name}";r=${result.remaining};t=${result.resetSeconds}`,
  };
  if (!result.allowed) headers["Retry-After"] = String(result.resetSeconds);
  return headers;
}

export function rateLimitedError(result: RateLimitOutcome): GraphQLError {
  return new GraphQLError(`Too many requests. Try again in ${result.resetSeconds} seconds.`, {
    extensions: { code: "RATE_LIMITED", http: { status: 429, headers: rateLimitHeaders(result) } },
  });
}

export function rateLimitUnavailableError(): GraphQLError {
  return new GraphQLError(RATE_LIMIT_UNAVAILABLE_MESSAGE, {
    extensions: {
      code: "SERVICE_UNAVAILABLE",
      http: { status: 503, headers: { "Retry-After": String(UNAVAILABLE_RETRY_AFTER) } },
    },
  });
}

/** One IPv6 host usually holds a whole /64, so IPv6 callers are counted per /64. */
export function addressBucket(address: string): string {
  const plain = address.split("%")[0] ?? address;
  if (!isIPv6(plain)) return plain;
  const [head = "", tail] = plain.split("::");
  const groups = (part: string) => (part === "" ? [] : part.split(":"));
  const left = groups(head);
  const right = tail === undefined ? [] : groups(tail);
  // An embedded IPv4 tail (64:ff9b::1.2.3.4) is two groups wide.
  const width = (parts: string[]) => parts.reduce((n, part) => n + (part.includes(".") ? 2 : 1), 0);
  const full = [...left, ...Array(Math.max(0, 8 - width(left) - width(right))).fill("0"), ...right];
  return `${full
    .slice(0, 4)
    .map((group) => Number.parseInt(group, 16).toString(16))
    .join(":")}::/64`;
}

/** The bucket of the default limit: the key, the session, or (anonymous or invalid credential) the IP. */
export function callerKey(principal: Principal | null, address: string): string {
  if (principal?.kind === "apiKey") return `key:${principal.apiKeyId}`;
  if (principal?.kind === "session") return `session:${principal.sessionId}`;
  return `ip:${addressBucket(address)}`;
}

/**
 * The stricter limits of `login`, `agentSignUp` and `agentVerify`: call it in the resolver before
 * any expensive or guessable work. Throws RATE_LIMITED (HTTP 429) or SERVICE_UNAVAILABLE (503).
 * `target` is what is being guessed at: the email, or the key being verified.
 */
export async function enforceSensitiveLimit(
  context: { services: { rateLimiter: RateLimiter }; clientIp?: string | undefined },
  bucket: SensitiveBucket,
  target?: string,
): Promise<void> {
  const limiter = context.services.rateLimiter;
  if (!limiter.enabled) return;
  const limits = SENSITIVE_LIMITS[bucket];
  const checks: [RateLimitPolicy, string][] = [
    [{ name: `${bucket}-ip`, ...limits.perIp }, addressBucket(context.clientIp ?? "unknown")],
  ];
  if (target !== undefined) {
    // Hashed: the store need not hold email addresses.
    const digest = createHash("sha256").update(target.trim().toLowerCase()).digest("base64url");
    checks.push([{ name: `${bucket}-target`, ...limits.perTarget }, digest]);
  }
  // One at a time: an IP already refused does not also use up its target's allowance.
  for (const [policy, key] of checks) {
    let result: RateLimitOutcome;
    try {
      result = await limiter.consume(policy, key);
    } catch (error) {
      if (error instanceof RateLimitUnavailable) throw rateLimitUnavailableError();
      throw error;
    }
    if (!result.allowed) throw rateLimitedError(result);
  }
}
