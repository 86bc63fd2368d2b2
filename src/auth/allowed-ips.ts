// IP allow-lists on API keys (docs/permissions.md, "Keys in production"): parsing and normalizing
// the entries a client gives (IPv4/IPv6 addresses and CIDR blocks), matching a client address
// against them (an IPv4-mapped IPv6 peer matches IPv4 entries), and the containment rules that keep
// a key from handing out an allow-list wider than its own. Matching uses Node's net.BlockList.
import { BlockList, isIP } from "node:net";
import { GraphQLError } from "graphql";
import { badUserInput } from "../errors.ts";

export const MAX_ALLOWED_IPS = 50;

export const ADDRESS_NOT_ALLOWED_MESSAGE = "This API key cannot be used from this address.";

/** The one refusal for a key used from an address its allow-list does not hold: HTTP 403. */
export function addressNotAllowed(): GraphQLError {
  return new GraphQLError(ADDRESS_NOT_ALLOWED_MESSAGE, {
    extensions: { code: "FORBIDDEN", http: { status: 403 } },
  });
}

interface Block {
  family: "ipv4" | "ipv6";
  /** Canonical address text (IPv4 dotted quad; IPv6 lowercase, compressed; mapped IPv4 as IPv4). */
  address: string;
  prefix: number;
}

/** Canonical text of an address, or undefined when it is not one (zone ids are refused). */
export function canonicalAddress(text: string): { family: "ipv4" | "ipv6"; address: string } | undefined {
  if (text.includes("%")) return undefined;
  const version = isIP(text);
  if (version === 4) return { family: "ipv4", address: text };
  if (version !== 6) return undefined;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(text);
  if (mapped?.[1] && isIP(mapped[1]) === 4) return { family: "ipv4", address: mapped[1] };
  // The WHATWG URL parser prints IPv6 in its RFC 5952 form.
  const address = new URL(`http://[${text}]/`).hostname.slice(1, -1);
  const hexMapped = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(address);
  if (hexMapped?.[1] && hexMapped[2]) {
    const high = Number.parseInt(hexMapped[1], 16);
    const low = Number.parseInt(hexMapped[2], 16);
    return { family: "ipv4", address: [high >> 8, high & 255, low >> 8, low & 255].join(".") };
  }
  return { family: "ipv6", address };
}

function parseEntry(entry: string): Block | undefined {
  const trimmed = entry.trim();
  const slash = trimmed.indexOf("/");
  const addressText = slash === -1 ? trimmed : trimmed.slice(0, slash);
  const parsed = canonicalAddress(addressText);
  if (!parsed) return undefined;
  const max = parsed.family === "ipv4" ? 32 : 128;
  if (slash === -1) return { ...parsed, prefix: max };
  const prefixText = trimmed.slice(slash + 1);
  if (!/^\d{1,3}$/.test(prefixText)) return undefined;
  let prefix = Number(prefixText);
  // A mapped IPv4 block (::ffff:10.0.0.0/104) is the IPv4 block 10.0.0.0/8.
  if (parsed.family === "ipv4" && isIP(addressText) === 6) prefix -= 96;
  if (prefix < 0 || prefix > max) return undefined;
  return { ...parsed, address: networkOf(parsed.family, parsed.address, prefix), prefix };
}

/** The block's network address: host bits cleared, so `10.1.2.3/8` is stored as `10.0.0.0/8`. */
function networkOf(family: "ipv4" | "ipv6", address: string, prefix: number): string {
  if (family === "ipv4") {
    const octets = address.split(".").map(Number);
    return octets.map((octet, i) => octet & maskByte(prefix - i * 8)).join(".");
  }
  const groups = expandIPv6(address);
  const masked = groups.map((group, i) => {
    const bits = Math.max(0, Math.min(16, prefix - i * 16));
    return bits === 0 ? 0 : group & ((0xffff << (16 - bits)) & 0xffff);
  });
  return new URL(`http://[${masked.map((g) => g.toString(16)).join(":")}]/`).hostname.slice(1, -1);
}

function maskByte(bits: number): number {
  if (bits <= 0) return 0;
  if (bits >= 8) return 255;
  return (0xff << (8 - bits)) & 0xff;
}

function expandIPv6(address: string): number[] {
  const [head = "", tail] = address.split("::");
  const parse = (part: string) => (part === "" ? [] : part.split(":").map((g) => Number.parseInt(g, 16)));
  const left = parse(head);
  const right = tail === undefined ? [] : parse(tail);
  return [...left, ...new Array(8 - left.length - right.length).fill(0), ...right];
}

function format(block: Block): string {
  const max = block.family === "ipv4" ? 32 : 128;
  return block.prefix === max ? block.address : `${block.address}/${block.prefix}`;
}

/**
 * The allow-list as it will be stored: each entry normalized (`2001:DB8::1` → `2001:db8::1`,
 * `10.1.2.3/8` → `10.0.0.0/8`, `::ffff:1.2.3.4` → `1.2.3.4`), duplicates dropped, order kept.
 * BAD_USER_INPUT naming `field` for anything else, an empty list, or more than 50 entries.
 */
export function normalizeAllowedIps(entries: readonly string[], field = "allowedIps"): string[] {
  if (entries.length === 0) {
    throw badUserInput(`${field} must list at least one address; leave it out (null) to allow any.`, field);
  }
  if (entries.length > MAX_ALLOWED_IPS) {
    throw badUserInput(`${field} takes at most ${MAX_ALLOWED_IPS} entries.`, field);
  }
  const normalized: string[] = [];
  for (const entry of entries) {
    const block = entry.length <= 100 ? parseEntry(entry) : undefined;
    if (!block) {
      throw badUserInput(
        `${field} entries must be IPv4 or IPv6 addresses or CIDR blocks (such as 203.0.113.7, 10.0.0.0/8 or 2001:db8::/32); got ${JSON.stringify(entry.slice(0, 100))}.`,
        field,
      );
    }
    const text = format(block);
    if (!normalized.includes(text)) normalized.push(text);
  }
  return normalized;
}

function blocksOf(entries: readonly string[]): Block[] {
  return entries.map(parseEntry).filter((block): block is Block => block !== undefined);
}

const lists = new Map<string, BlockList>();

function blockListOf(entries: readonly string[]): BlockList {
  const cacheKey = entries.join(",");
  let list = lists.get(cacheKey);
  if (!list) {
    list = new BlockList();
    for (const block of blocksOf(entries)) list.addSubnet(block.address, block.prefix, block.family);
    if (lists.size > 10_000) lists.clear();
    lists.set(cacheKey, list);
  }
  return list;
}

/** Whether a client address may use a key with this allow-list (null: any address). */
export function addressAllowed(allowedIps: readonly string[] | null, clientAddress: string): boolean {
  if (allowedIps === null) return true;
  const parsed = canonicalAddress(clientAddress);
  if (!parsed) return false;
  return blockListOf(allowedIps).check(parsed.address, parsed.family);
}

/** Whether every address of `inner` lies in `outer` (CIDR blocks are either nested or disjoint). */
function blockWithin(inner: Block, outer: Block): boolean {
  if (inner.family !== outer.family || outer.prefix > inner.prefix) return false;
  const list = new BlockList();
  list.addSubnet(outer.address, outer.prefix, outer.family);
  return list.check(inner.address, inner.family);
}

/** The entries of `entries` that lie outside `bound` (null bound: none do). */
export function entriesOutside(entries: readonly string[], bound: readonly string[] | null): string[] {
  if (bound === null) return [];
  const outer = blocksOf(bound);
  return entries.filter((entry) => {
    const [block] = blocksOf([entry]);
    return !block || !outer.some((o) => blockWithin(block, o));
  });
}

/**
 * The addresses both lists allow, as a list (null: any address). Exact, because two CIDR blocks are
 * either nested or disjoint: the intersection is every block of one that lies inside the other.
 * An empty array means no address at all.
 */
export function intersectAllowedIps(
  a: readonly string[] | null,
  b: readonly string[] | null,
): string[] | null {
  if (a === null) return b === null ? null : [...b];
  if (b === null) return [...a];
  const result = [...a.filter((entry) => entriesOutside([entry], b).length === 0)];
  for (const entry of b) {
    if (entriesOutside([entry], a).length === 0 && !result.includes(entry)) result.push(entry);
  }
  return result;
}

/** Which proxies' X-Forwarded-For to believe (config TRUST_PROXY); null: none. */
export type TrustedProxies = { hops: number } | { cidrs: readonly string[] } | null;

/**
 * The client's address: the TCP peer, or with trusted proxies the right-most untrusted address of
 * X-Forwarded-For (docs/operations.md, "Behind a proxy"). A hop count trusts that many addresses from
 * the right (the peer first); a CIDR list trusts the addresses it holds. An entry that is not an
 * address stops the walk at the trusted hop that sent it, so a client cannot pick its own identity
 * by writing garbage. Canonical text: IPv4-mapped IPv6 as IPv4.
 */
export function forwardedClient(
  peer: string | undefined,
  forwardedFor: string | readonly string[] | undefined,
  trusted: TrustedProxies,
): string {
  const direct = peer === undefined ? undefined : canonicalAddress(peer);
  if (!direct) return peer ?? "unknown";
  if (trusted === null || forwardedFor === undefined) return direct.address;
  const header = typeof forwardedFor === "string" ? forwardedFor : forwardedFor.join(",");
  const hops = header
    .split(",")
    .map((entry) => entry.trim())
    .filter((entry) => entry !== "");
  // chain[0] is the peer, then each X-Forwarded-For entry from the right.
  const chain = [direct.address, ...hops.reverse()];
  const isTrusted =
    "hops" in trusted
      ? (index: number) => index < trusted.hops
      : (_index: number, address: string) => addressAllowed(trusted.cidrs, address);
  let current = direct.address;
  for (let index = 0; index < chain.length; index++) {
    const parsed = index === 0 ? direct : canonicalAddress(stripPort(chain[index] ?? ""));
    if (!parsed) return current;
    current = parsed.address;
    if (!isTrusted(index, current)) return current;
  }
  return current;
}

/** `1.2.3.4:5678` and `[2001:db8::1]:443`, as some proxies write them, without the port. */
function stripPort(entry: string): string {
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(entry);
  if (bracketed?.[1]) return bracketed[1];
  const v4 = /^(\d+\.\d+\.\d+\.\d+):\d+$/.exec(entry);
  return v4?.[1] ?? entry;
}
