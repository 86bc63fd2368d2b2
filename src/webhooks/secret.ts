// Webhook signing secrets: derived, never stored.
//
// A webhook row keeps only a random salt. Its secret is HMAC-SHA256(server key, salt), rendered in
// the Standard Webhooks form `whsec_<base64 of 32 bytes>`, and can be recomputed whenever a delivery
// has to be signed. The server key lives outside the database: WEBHOOK_SECRET_KEY, or else a random
// key in DATA_DIR/webhook-secret.key (0600), made on first use. The trade-off:
//  + a database dump or backup alone reveals no secret and cannot forge a delivery;
//  - losing or changing the server key changes every webhook's secret (receivers must be given new
//    ones), and every node must use the same key: a deployment with several nodes, or whose DATA_DIR
//    is not persistent, must set WEBHOOK_SECRET_KEY.
import { createHmac, randomBytes } from "node:crypto";
import { linkSync, mkdirSync, readFileSync, unlinkSync, writeFileSync } from "node:fs";
import path from "node:path";
import type { Config } from "../config.ts";

export const WEBHOOK_SECRET_PREFIX = "whsec_";
export const SECRET_KEY_FILE = "webhook-secret.key";
const MIN_KEY_LENGTH = 32;

/** A fresh salt for a new webhook (and so a fresh, independent secret). */
export function newWebhookSecretSalt(): Buffer {
  return randomBytes(32);
}

/** The `whsec_…` secret of the webhook with this salt: the same on every node that shares the server key. */
export function webhookSigningSecret(
  config: Pick<Config, "webhookSecretKey" | "dataDir">,
  salt: Buffer,
): string {
  const secret = createHmac("sha256", serverKey(config)).update(salt).digest();
  return `${WEBHOOK_SECRET_PREFIX}${secret.toString("base64")}`;
}

/**
 * A key of its own for another use of the server key (signing download links: src/files/token.ts),
 * HMAC-SHA256(server key, purpose): shared by every node like the webhook secrets, and independent of
 * them. A webhook's salt is 32 random bytes, so a purpose of any other length never yields a webhook
 * secret.
 */
export function derivedServerKey(
  config: Pick<Config, "webhookSecretKey" | "dataDir">,
  purpose: string,
): Buffer {
  if (Buffer.byteLength(purpose) === 32) throw new Error("a purpose of 32 bytes could be a webhook salt");
  return createHmac("sha256", serverKey(config)).update(purpose).digest();
}

const fileKeys = new Map<string, string>();

function serverKey(config: Pick<Config, "webhookSecretKey" | "dataDir">): string {
  if (config.webhookSecretKey !== undefined) return config.webhookSecretKey;
  const file = path.join(config.dataDir, SECRET_KEY_FILE);
  let key = fileKeys.get(file);
  if (key === undefined) {
    key = readOrCreateKeyFile(file);
    fileKeys.set(file, key);
  }
  return key;
}

// Synchronous on purpose: it runs once per process (then the key is cached) and keeps
// webhookSigningSecret() a plain function the delivery code can call anywhere.
function readOrCreateKeyFile(file: string): string {
  try {
    return checkedKey(readFileSync(file, "utf8"), file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
  }
  mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  // Written whole to a private temporary file, then linked into place: link() fails if another
  // process got there first, and then we use theirs. Nobody ever reads a half-written key.
  const temporary = `${file}.${process.pid}.${randomBytes(6).toString("hex")}.tmp`;
  writeFileSync(temporary, `${randomBytes(32).toString("base64url")}\n`, { mode: 0o600, flag: "wx" });
  try {
    linkSync(temporary, file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
  } finally {
    unlinkSync(temporary);
  }
  return checkedKey(readFileSync(file, "utf8"), file);
}

function checkedKey(text: string, file: string): string {
  const key = text.trim();
  if (key.length < MIN_KEY_LENGTH) {
    throw new Error(`${file} must hold a key of at least ${MIN_KEY_LENGTH} characters`);
  }
  return key;
}
