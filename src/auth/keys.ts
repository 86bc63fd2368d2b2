// API key text: `mr_` + 32 random base62 characters + 6 base62 characters of CRC32 over the random part.
// The checksum lets a leaked key be recognised (secret scanners) and a mistyped or forged one be
// rejected before any database read.
import { createHash, createHmac, randomBytes } from "node:crypto";
import { crc32 } from "node:zlib";

const BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const RANDOM_LENGTH = 32;
const CHECKSUM_LENGTH = 6;
export const KEY_PREFIX = "mr_";
const KEY_PATTERN = /^mr_([0-9A-Za-z]{32})([0-9A-Za-z]{6})$/;

/** Uniform base62 characters: bytes ≥ 248 (= 4 × 62) are discarded, so `byte % 62` has no bias. */
export function randomBase62(length: number): string {
  let out = "";
  while (out.length < length) {
    for (const byte of randomBytes(length + 8)) {
      if (byte < 248) out += BASE62[byte % 62];
      if (out.length === length) break;
    }
  }
  return out;
}

function base62Fixed(value: number, width: number): string {
  let out = "";
  let rest = value;
  for (let i = 0; i < width; i++) {
    out = BASE62[rest % 62] + out;
    rest = Math.floor(rest / 62);
  }
  return out;
}

export function checksum(randomPart: string): string {
  return base62Fixed(crc32(randomPart), CHECKSUM_LENGTH);
}

export function generateApiKey(): string {
  const random = randomBase62(RANDOM_LENGTH);
  return `${KEY_PREFIX}${random}${checksum(random)}`;
}

/** True when the text has the key format and its checksum matches. Touches no database. */
export function isWellFormedApiKey(text: string): boolean {
  const match = KEY_PATTERN.exec(text);
  return match !== null && checksum(match[1] as string) === match[2];
}

/** What we show for a key after its creation: the first 8 characters after `mr_`. */
export function keyDisplayPrefix(key: string): string {
  return key.slice(KEY_PREFIX.length, KEY_PREFIX.length + 8);
}

/**
 * The stored form of a high-entropy token: SHA-256, or HMAC-SHA256 with the server pepper when one
 * is configured (then a stolen database alone cannot even confirm a guessed key).
 */
export function hashToken(token: string, pepper?: string): Buffer {
  return pepper
    ? createHmac("sha256", pepper).update(token).digest()
    : createHash("sha256").update(token).digest();
}

/** An opaque session token: 256 random bits. */
export function generateSessionToken(): string {
  return randomBytes(32).toString("base64url");
}

export { CHECKSUM_LENGTH, RANDOM_LENGTH };
