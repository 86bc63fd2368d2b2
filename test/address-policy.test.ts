// The outbound address classifier (src/net/address-policy.ts): every IPv6 form that carries an IPv4
// address is judged exactly as that IPv4 address, whatever the address and however it is written.
import { BlockList } from "node:net";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { classifyAddress, isPublicAddress } from "../src/net/address-policy.ts";

// IANA's IPv4 special-purpose ranges that are not global unicast, matched by node's own BlockList:
// an oracle that shares no code with the classifier.
const IPV4_SPECIAL = [
  ["0.0.0.0", 8],
  ["10.0.0.0", 8],
  ["100.64.0.0", 10],
  ["127.0.0.0", 8],
  ["169.254.0.0", 16],
  ["172.16.0.0", 12],
  ["192.0.0.0", 24],
  ["192.0.2.0", 24],
  ["192.88.99.0", 24],
  ["192.168.0.0", 16],
  ["198.18.0.0", 15],
  ["198.51.100.0", 24],
  ["203.0.113.0", 24],
  ["224.0.0.0", 4],
  ["240.0.0.0", 4],
] as const;
const oracle = new BlockList();
for (const [network, prefix] of IPV4_SPECIAL) oracle.addSubnet(network, prefix, "ipv4");

const dotted = (v: number) => [v >>> 24, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff].join(".");
const hi = (v: number) => (v >>> 16).toString(16);
const lo = (v: number) => (v & 0xffff).toString(16);
const toNumber = (text: string) => text.split(".").reduce((value, octet) => value * 256 + Number(octet), 0);

/** Every IPv4 address, with the edges of each special range (and their neighbours) drawn often. */
const ipv4 = fc.oneof(
  fc.integer({ min: 0, max: 0xffff_ffff }),
  fc
    .constantFrom(...IPV4_SPECIAL)
    .chain(([network, prefix]) => {
      const first = toNumber(network);
      const last = first + 2 ** (32 - prefix) - 1;
      return fc.constantFrom(first - 1, first, first + 1, last - 1, last, last + 1);
    })
    .filter((v) => v >= 0 && v <= 0xffff_ffff),
);
const word = fc.integer({ min: 0, max: 0xffff }).map((w) => w.toString(16));
const words = (n: number) => fc.array(word, { minLength: n, maxLength: n });
/** A public IPv4 address, for the other half of a Teredo address. */
const publicIpv4 = ipv4.filter((v) => !oracle.check(dotted(v), "ipv4"));

/** The IPv6 spellings of IPv4 address v: mapped, translated, compatible, NAT64, 6to4, Teredo. */
const embeddings = (v: number) =>
  fc.tuple(words(5), word, word, publicIpv4).map(([rest, flags, port, other]) => {
    const inverted = (~v >>> 0) as number;
    return [
      `::ffff:${dotted(v)}`,
      `::FFFF:${hi(v)}:${lo(v)}`,
      `0:0:0:0:0:ffff:${hi(v)}:${lo(v)}`,
      `::ffff:0:${dotted(v)}`,
      `0:0:0:0:ffff:0:${hi(v)}:${lo(v)}`,
      `::${dotted(v)}`,
      `0:0:0:0:0:0:${hi(v)}:${lo(v)}`,
      `64:ff9b::${dotted(v)}`,
      `64:ff9b:0:0:0:0:${hi(v)}:${lo(v)}`,
      `2002:${hi(v)}:${lo(v)}:${rest.join(":")}`,
      // Teredo: v as the client (stored inverted) with a public server, then as the server.
      `2001:0:${hi(other)}:${lo(other)}:${flags}:${port}:${hi(inverted)}:${lo(inverted)}`,
      `2001:0:${hi(v)}:${lo(v)}:${flags}:${port}:${hi(~other >>> 0)}:${lo(~other >>> 0)}`,
    ];
  });

describe("the outbound address classifier", () => {
  it("classifies IPv4 exactly as IANA's special-purpose registry does", () => {
    fc.assert(
      fc.property(ipv4, (v) => {
        expect(isPublicAddress(dotted(v))).toBe(!oracle.check(dotted(v), "ipv4"));
      }),
      { numRuns: 5_000 },
    );
  });

  it("judges every IPv6 form that carries an IPv4 address exactly as that address", () => {
    fc.assert(
      fc.property(
        ipv4.chain((v) => embeddings(v).map((forms) => [v, forms] as const)),
        ([v, forms]) => {
          const expected = isPublicAddress(dotted(v));
          for (const form of forms) {
            expect(isPublicAddress(form), `${form} carries ${dotted(v)}`).toBe(expected);
            expect(isPublicAddress(`[${form}]`), `[${form}]`).toBe(expected);
          }
        },
      ),
      { numRuns: 3_000 },
    );
  });

  it("never calls anything in local-use NAT64 (64:ff9b:1::/48) public", () => {
    fc.assert(
      fc.property(words(5), (rest) => {
        expect(isPublicAddress(`64:ff9b:1:${rest.join(":")}`)).toBe(false);
      }),
      { numRuns: 2_000 },
    );
  });

  it.each([
    // The two found in review: translated and local-use NAT64 addresses of internal IPv4 addresses.
    ["::ffff:0:7f00:1", false, "IPv4-translated"],
    ["::ffff:0:a00:1", false, "IPv4-translated"],
    ["64:ff9b:1::a00:1", false, "local-use NAT64"],
    ["64:ff9b:1:ffff::808:808", false, "local-use NAT64"],
    ["::ffff:127.0.0.1", false, "IPv4-mapped"],
    ["::ffff:a9fe:a9fe", false, "IPv4-mapped"],
    ["64:ff9b::10.0.0.1", false, "NAT64 well-known prefix"],
    ["::127.0.0.1", false, "IPv4-compatible (deprecated)"],
    ["2002:c0a8:101::1", false, "6to4"],
    ["2001:0:4136:e378:8000:63bf:3fff:fdd2", false, "Teredo"], // client 192.0.2.45
    ["::", false, "unspecified"],
    ["::1", false, "loopback"],
    ["fe80::1", false, "link-local"],
    ["fe80::1%eth0", false, "scoped (zone id)"],
    ["fd00:ec2::254", false, "unique local"],
    ["fec0::1", false, "site-local (deprecated)"],
    ["ff02::1", false, "multicast"],
    ["100::1", false, "discard-only"],
    ["5f00::1", false, "segment routing (SRv6) SIDs"],
    ["2001:db8::1", false, "documentation"],
    ["3fff::1", false, "documentation"],
    ["2001:2::1", false, "IETF protocol assignments"],
    ["4000::1", false, "not global unicast"],
    ["169.254.169.254", false, "link-local"],
    ["100.64.0.1", false, "shared address space (carrier-grade NAT)"],
    ["192.88.99.1", false, "deprecated 6to4 relay anycast"],
    ["255.255.255.255", false, "reserved"],
    ["0x7f.1", false, "not an IP address"],
    ["2130706433", false, "not an IP address"],
    ["127.000.000.001", false, "not an IP address"],
    ["localhost", false, "not an IP address"],
    ["8.8.8.8", true, "global unicast"],
    ["2606:4700:4700::1111", true, "global unicast"],
    ["::ffff:8.8.8.8", true, "IPv4-mapped"],
    ["::ffff:0:808:808", true, "IPv4-translated"],
    ["64:ff9b::8.8.8.8", true, "NAT64 well-known prefix"],
    ["2002:808:808::1", true, "6to4"],
  ])("%s: public %s (%s)", (address, expected, range) => {
    expect(classifyAddress(address)).toMatchObject({ public: expected, range });
  });
});
