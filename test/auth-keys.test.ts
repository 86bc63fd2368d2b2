// Key text: format, checksum, uniform randomness, and rejection before any database read.
import { describe, expect, it } from "vitest";
import { Authenticator } from "../src/auth/authenticator.ts";
import { checksum, generateApiKey, isWellFormedApiKey, keyDisplayPrefix } from "../src/auth/keys.ts";
import { databaseSuite } from "./helpers/suite.ts";

const BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const database = databaseSuite();

describe("API key text", () => {
  const keys = Array.from({ length: 10_000 }, generateApiKey);

  it("is mr_ + 32 random base62 + 6 base62 of CRC32 over the random part", () => {
    for (const key of keys) {
      expect(key).toMatch(/^mr_[0-9A-Za-z]{38}$/);
      expect(key.slice(35)).toBe(checksum(key.slice(3, 35)));
      expect(isWellFormedApiKey(key)).toBe(true);
    }
    expect(new Set(keys).size).toBe(keys.length);
    expect(keyDisplayPrefix(keys[0] as string)).toBe((keys[0] as string).slice(3, 11));
  });

  it("draws characters uniformly (no modulo bias)", () => {
    const counts = new Map<string, number>();
    for (const key of keys) for (const c of key.slice(3, 35)) counts.set(c, (counts.get(c) ?? 0) + 1);
    const expected = (keys.length * 32) / 62;
    const chiSquare = [...BASE62].reduce(
      (sum, c) => sum + ((counts.get(c) ?? 0) - expected) ** 2 / expected,
      0,
    );
    // 61 degrees of freedom: p = 0.0001 at about 115. A "% 62" over raw bytes scores in the hundreds.
    expect(chiSquare).toBeLessThan(115);
  });

  it("rejects every one-character change of 10,000 keys without a single SQL statement", async () => {
    const authenticator = new Authenticator(database.db);
    const before = database.statements.length;
    let rejected = 0;
    for (const [i, key] of keys.entries()) {
      const position = 3 + (i % 38);
      const original = key[position] as string;
      const replacement = BASE62[(BASE62.indexOf(original) + 1 + (i % 61)) % 62] as string;
      const mutated = key.slice(0, position) + replacement + key.slice(position + 1);
      expect(isWellFormedApiKey(mutated)).toBe(false);
      expect(await authenticator.authenticateApiKey(mutated)).toBeNull();
      rejected++;
    }
    // Prefix, length and alphabet changes too.
    for (const bad of [
      "",
      "mr_",
      `xr_${keys[0]?.slice(3)}`,
      `${keys[0]}x`,
      keys[0]?.slice(0, -1) ?? "",
      `mr_${"é".repeat(38)}`,
    ]) {
      expect(await authenticator.authenticateApiKey(bad)).toBeNull();
    }
    expect(rejected).toBe(10_000);
    expect(database.statements.length - before).toBe(0);
  });
});
