// What a list says of an address: the one rule behind RECEIVE lists (inbound mail is labelled
// `blocked`) and SEND lists (a send is refused) (docs/permissions.md, "Lists").
import type { ListType } from "../db/types.ts";
import { domainOf } from "../mail/addresses.ts";

/** An address entry names that address; a domain entry, addresses at exactly that domain. Case-blind. */
export function entryMatches(entry: string, address: string): boolean {
  const normalised = address.toLowerCase();
  if (entry.includes("@")) return entry === normalised;
  return domainOf(normalised) === entry;
}

/**
 * Why the lists refuse these addresses, or undefined: a BLOCK entry names one of them ("BLOCK"), or
 * there are ALLOW entries and none names any of them ("NOT_ALLOWED"). The entries are every list
 * that applies (organization, pod and inbox level) of one direction.
 */
export function listRefusal(
  entries: readonly { type: ListType; entry: string }[],
  addresses: readonly string[],
): "BLOCK" | "NOT_ALLOWED" | undefined {
  if (entries.length === 0) return undefined;
  const names = (type: ListType) =>
    entries.some(
      (entry) => entry.type === type && addresses.some((address) => entryMatches(entry.entry, address)),
    );
  if (names("BLOCK")) return "BLOCK";
  if (entries.some((entry) => entry.type === "ALLOW") && !names("ALLOW")) return "NOT_ALLOWED";
  return undefined;
}
