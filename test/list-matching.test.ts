// The one rule for what a list entry names (src/list-entries/matching.ts), used by RECEIVE lists and
// SEND lists alike: the two copies it replaced disagreed on letter case.
import { describe, expect, it } from "vitest";
import { entryMatches, listRefusal } from "../src/list-entries/matching.ts";

describe("entryMatches", () => {
  it("names an address exactly, and a domain's addresses, whatever their case", () => {
    expect(entryMatches("ann@example.com", "Ann@Example.COM")).toBe(true);
    expect(entryMatches("example.com", "bob@EXAMPLE.com")).toBe(true);
    expect(entryMatches("ann@example.com", "anna@example.com")).toBe(false);
  });

  it("does not stretch a domain to its subdomains or its look-alikes", () => {
    expect(entryMatches("example.com", "ann@mail.example.com")).toBe(false);
    expect(entryMatches("example.com", "ann@notexample.com")).toBe(false);
  });
});

describe("listRefusal", () => {
  const block = (entry: string) => ({ type: "BLOCK" as const, entry });
  const allow = (entry: string) => ({ type: "ALLOW" as const, entry });

  it("refuses what a BLOCK entry names, even when an ALLOW entry names it too", () => {
    expect(listRefusal([block("spam.test"), allow("spam.test")], ["x@spam.test"])).toBe("BLOCK");
  });

  it("refuses what no ALLOW entry names once there is one, and nothing without lists", () => {
    expect(listRefusal([allow("friends.test")], ["x@strangers.test"])).toBe("NOT_ALLOWED");
    expect(listRefusal([allow("friends.test")], ["x@strangers.test", "y@Friends.TEST"])).toBeUndefined();
    expect(listRefusal([], ["anyone@anywhere.test"])).toBeUndefined();
  });
});
