// Which IP addresses the server may connect to on a tenant's behalf: public unicast only, so that a URL
// a tenant chose (a webhook today, any outbound target tomorrow) cannot reach the server's own network
// (SSRF). One classifier for every such target, checked when a target is saved and again just before
// connecting, because a name's addresses can change in between.
//
// The tables follow IANA's IPv4 and IPv6 Special-Purpose Address Registries. An IPv6 address that
// carries an IPv4 address (mapped, translated, compatible, NAT64, 6to4, Teredo) ends up at that IPv4
// address through some translator or tunnel, so it is judged by it; anything else in IPv6 must be
// global unicast (2000::/3) outside the special-purpose ranges.
import { isIP } from "node:net";

export interface AddressVerdict {
  public: boolean;
  /** The special-purpose range that decided, or "global unicast". */
  range: string;
  /** For IPv6 forms that carry IPv4 addresses: those addresses, each judged on its own. */
  embedded?: string[];
}

/** An address as a number (32 or 128 bits) and the ranges it is matched against, as [network, bits, name]. */
type Range = readonly [bigint, number, string];

function ipv4Value(text: string): bigint {
  return text.split(".").reduce((value, octet) => (value << 8n) | BigInt(octet), 0n);
}

function ipv4Text(value: bigint): string {
  return [24n, 16n, 8n, 0n].map((shift) => (value >> shift) & 0xffn).join(".");
}

/**
 * The 128 bits of a valid IPv6 address, read from the WHATWG URL parser's serialization (lower-case
 * hex, zeros compressed, no dotted IPv4 part): the parser that reads the URL the server will call,
 * and one that reads `::1.2.3.4` as itself (ipaddr.js, for one, reads it as `::ffff:1.2.3.4`).
 * undefined for what that parser refuses, such as an address with a zone id.
 */
function ipv6Value(text: string): bigint | undefined {
  let host: string;
  try {
    host = new URL(`http://[${text}]/`).hostname;
  } catch {
    return undefined;
  }
  const [head = "", tail] = host.slice(1, -1).split("::");
  const words = (part: string) => (part === "" ? [] : part.split(":"));
  const left = words(head);
  const right = tail === undefined ? [] : words(tail);
  const all = [...left, ...new Array<string>(8 - left.length - right.length).fill("0"), ...right];
  return all.reduce((value, word) => (value << 16n) | BigInt(`0x${word}`), 0n);
}

function ranges(
  parse: (text: string) => bigint | undefined,
  width: number,
  rows: readonly (readonly [string, string])[],
): Range[] {
  return rows.map(([cidr, name]) => {
    const [network = "", bits = ""] = cidr.split("/");
    const value = parse(network);
    if (value === undefined) throw new Error(`bad range ${cidr}`);
    return [value >> BigInt(width - Number(bits)), Number(bits), name] as const;
  });
}

function within(value: bigint, width: number, [network, bits]: Range): boolean {
  return value >> BigInt(width - bits) === network;
}

/**
 * IPv4 ranges that are not globally reachable unicast. The registry's globally reachable anycast
 * services (AS112, AMT) are left public: nothing of ours lives there.
 */
const IPV4_NOT_PUBLIC = ranges(ipv4Value, 32, [
  ["0.0.0.0/8", "this network"], // includes the unspecified 0.0.0.0
  ["10.0.0.0/8", "private"],
  ["100.64.0.0/10", "shared address space (carrier-grade NAT)"],
  ["127.0.0.0/8", "loopback"],
  ["169.254.0.0/16", "link-local"], // cloud metadata services live here
  ["172.16.0.0/12", "private"],
  ["192.0.0.0/24", "IETF protocol assignments"], // DS-Lite, NAT64 discovery, PCP/TURN anycast
  ["192.0.2.0/24", "documentation (TEST-NET-1)"],
  ["192.88.99.0/24", "deprecated 6to4 relay anycast"], // leads into IPv6 through any relay
  ["192.168.0.0/16", "private"],
  ["198.18.0.0/15", "benchmarking"],
  ["198.51.100.0/24", "documentation (TEST-NET-2)"],
  ["203.0.113.0/24", "documentation (TEST-NET-3)"],
  ["224.0.0.0/4", "multicast"],
  ["240.0.0.0/4", "reserved"], // includes the limited broadcast 255.255.255.255
]);

/**
 * IPv6, as a decision list: the first range that holds the address decides. Forms that carry an IPv4
 * address name where it sits; the rest are refused outright. Whatever none of them holds must be
 * global unicast (2000::/3).
 */
type Ipv6Rule = { range: Range; carries?: (value: bigint) => bigint[] };
const low32 = (value: bigint) => value & 0xffff_ffffn;
const IPV6_RULES: Ipv6Rule[] = [
  // Inside ::/96 below, and refused by it too (they carry 0.0.0.0 and 0.0.0.1): named for what they are.
  ...ranges(ipv6Value, 128, [
    ["::/128", "unspecified"],
    ["::1/128", "loopback"],
  ]).map((range) => ({ range })),
  ...ranges(ipv6Value, 128, [
    ["::ffff:0:0/96", "IPv4-mapped"],
    ["::ffff:0:0:0/96", "IPv4-translated"],
    ["::/96", "IPv4-compatible (deprecated)"],
    ["64:ff9b::/96", "NAT64 well-known prefix"],
  ]).map((range) => ({ range, carries: (value: bigint) => [low32(value)] })),
  // Where the IPv4 address sits depends on the operator's prefix length (RFC 6052 allows six), so it
  // cannot be read back; and such a translator serves a local network by definition (RFC 8215).
  ...ranges(ipv6Value, 128, [["64:ff9b:1::/48", "local-use NAT64"]]).map((range) => ({ range })),
  ...ranges(ipv6Value, 128, [["2002::/16", "6to4"]]).map((range) => ({
    range,
    carries: (value: bigint) => [(value >> 80n) & 0xffff_ffffn],
  })),
  // Bits 32–63 are the Teredo server, the last 32 bits the client's address inverted (RFC 4380).
  ...ranges(ipv6Value, 128, [["2001::/32", "Teredo"]]).map((range) => ({
    range,
    carries: (value: bigint) => [(value >> 64n) & 0xffff_ffffn, low32(value) ^ 0xffff_ffffn],
  })),
  ...ranges(ipv6Value, 128, [
    ["100::/64", "discard-only"],
    ["100:0:0:1::/64", "dummy prefix"],
    ["5f00::/16", "segment routing (SRv6) SIDs"],
    ["fc00::/7", "unique local"],
    ["fe80::/10", "link-local"],
    ["fec0::/10", "site-local (deprecated)"],
    ["ff00::/8", "multicast"],
    // Benchmarking, AMT, AS112, ORCHID, drone tags, PCP/TURN anycast: none is a place to connect to.
    ["2001::/23", "IETF protocol assignments"],
    ["2001:db8::/32", "documentation"],
    ["3fff::/20", "documentation"],
  ]).map((range) => ({ range })),
];
const [GLOBAL_UNICAST] = ranges(ipv6Value, 128, [["2000::/3", "global unicast"]]) as [Range];

function classifyIpv4(value: bigint): AddressVerdict {
  const range = IPV4_NOT_PUBLIC.find((candidate) => within(value, 32, candidate));
  return range ? { public: false, range: range[2] } : { public: true, range: "global unicast" };
}

function classifyIpv6(value: bigint): AddressVerdict {
  const rule = IPV6_RULES.find((candidate) => within(value, 128, candidate.range));
  if (rule?.carries) {
    // Public only when every IPv4 address the form carries is.
    const carried = rule.carries(value);
    return {
      public: carried.every((address) => classifyIpv4(address).public),
      range: rule.range[2],
      embedded: carried.map(ipv4Text),
    };
  }
  if (rule) return { public: false, range: rule.range[2] };
  if (!within(value, 128, GLOBAL_UNICAST)) return { public: false, range: "not global unicast" };
  return { public: true, range: "global unicast" };
}

/**
 * What `ip` is, and whether it is a public unicast address the server may connect to. Anything that
 * is not a plain IP address (host names, lenient IPv4 forms such as `0x7f.1`, a zone id, which only
 * scoped addresses carry) is not public.
 */
export function classifyAddress(ip: string): AddressVerdict {
  const text = ip.startsWith("[") && ip.endsWith("]") ? ip.slice(1, -1) : ip;
  // Strict: dotted-quad decimal IPv4 without leading zeros, or IPv6.
  const family = isIP(text);
  if (family === 4) return classifyIpv4(ipv4Value(text));
  const value = family === 6 ? ipv6Value(text) : undefined;
  if (value === undefined) {
    return { public: false, range: family === 6 ? "scoped (zone id)" : "not an IP address" };
  }
  return classifyIpv6(value);
}

/** True when `ip` is a public unicast address (see classifyAddress). */
export function isPublicAddress(ip: string): boolean {
  return classifyAddress(ip).public;
}
