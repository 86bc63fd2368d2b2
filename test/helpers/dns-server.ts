// A small authoritative DNS server on 127.0.0.1 (UDP and TCP, same port) for MX and TXT records,
// so domain verification is tested against real DNS traffic through node:dns. Names it does not
// know get NXDOMAIN; known names without the asked type get an empty answer (NODATA). SPF, DKIM and
// DMARC records are TXT records (test/inbound-authentication.test.ts). A `silent` server logs the
// questions and answers none: a dead resolver, for timeouts.
import dgram from "node:dgram";
import net from "node:net";

const TYPE = { MX: 15, TXT: 16 } as const;

export interface ZoneEntry {
  MX?: { priority: number; exchange: string }[];
  /** Each value is one TXT record; values longer than 255 bytes are split into several strings. */
  TXT?: string[];
}

export interface DnsServer {
  /** `127.0.0.1:<port>`, for DNS_SERVERS. */
  address: string;
  /** Mutable: change records between queries. Keys are lower-case names without the final dot. */
  zone: Map<string, ZoneEntry>;
  queries: { name: string; type: number }[];
  /** Mutable: while true, questions are logged and never answered. */
  silent: boolean;
  stop(): Promise<void>;
}

/**
 * A UDP socket and a TCP listener on one port of 127.0.0.1. The UDP port is chosen by the system;
 * the same TCP port may already be taken (by any connection's local end, say to a database on
 * this machine), and then another port is tried.
 */
async function bindBoth(
  onUdp: (udp: dgram.Socket) => void,
  onTcp: (socket: net.Socket) => void,
): Promise<{ udp: dgram.Socket; tcp: net.Server; port: number }> {
  for (let attempt = 1; ; attempt++) {
    const udp = dgram.createSocket("udp4");
    onUdp(udp);
    await new Promise<void>((resolve) => udp.bind(0, "127.0.0.1", resolve));
    const port = udp.address().port;
    const tcp = net.createServer(onTcp);
    try {
      await new Promise<void>((resolve, reject) => {
        tcp.once("error", reject);
        tcp.listen(port, "127.0.0.1", resolve);
      });
      return { udp, tcp, port };
    } catch (error) {
      await new Promise<void>((resolve) => udp.close(() => resolve()));
      if ((error as NodeJS.ErrnoException).code !== "EADDRINUSE" || attempt >= 20) throw error;
    }
  }
}

export async function startDnsServer(options: { silent?: boolean } = {}): Promise<DnsServer> {
  const zone = new Map<string, ZoneEntry>();
  const queries: DnsServer["queries"] = [];
  let server: DnsServer | undefined;
  const answer = (query: Buffer) => {
    const response = respond(query, zone, queries);
    return server?.silent ? undefined : response;
  };

  const sockets = new Set<net.Socket>();
  const onUdp = (udp: dgram.Socket) =>
    udp.on("message", (message, remote) => {
      const response = answer(message);
      if (response) udp.send(response, remote.port, remote.address);
    });
  const onTcp = (socket: net.Socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    let buffered = Buffer.alloc(0);
    socket.on("data", (chunk) => {
      buffered = Buffer.concat([buffered, chunk]);
      while (buffered.length >= 2 && buffered.length >= 2 + buffered.readUInt16BE(0)) {
        const length = buffered.readUInt16BE(0);
        const response = answer(buffered.subarray(2, 2 + length));
        buffered = buffered.subarray(2 + length);
        if (response) {
          const prefix = Buffer.alloc(2);
          prefix.writeUInt16BE(response.length);
          socket.write(Buffer.concat([prefix, response]));
        }
      }
    });
    socket.on("error", () => {});
  };
  const { udp, tcp, port } = await bindBoth(onUdp, onTcp);

  server = {
    address: `127.0.0.1:${port}`,
    zone,
    queries,
    silent: options.silent ?? false,
    stop: async () => {
      await new Promise<void>((resolve) => udp.close(() => resolve()));
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => tcp.close(() => resolve()));
    },
  };
  return server;
}

function respond(query: Buffer, zone: Map<string, ZoneEntry>, log: DnsServer["queries"]): Buffer | undefined {
  if (query.length < 12 || query.readUInt16BE(4) !== 1) return undefined;
  // The question: length-prefixed labels, then type and class.
  const labels: string[] = [];
  let offset = 12;
  while (offset < query.length) {
    const length = query[offset] ?? 0;
    if (length === 0 || length > 63) break;
    labels.push(query.toString("latin1", offset + 1, offset + 1 + length));
    offset += 1 + length;
  }
  if (query[offset] !== 0 || offset + 5 > query.length) return undefined;
  const questionEnd = offset + 5;
  const type = query.readUInt16BE(offset + 1);
  const name = labels.join(".").toLowerCase();
  log.push({ name, type });

  const entry = zone.get(name);
  const answers: Buffer[] = [];
  if (entry && type === TYPE.MX) {
    for (const mx of entry.MX ?? []) {
      const preference = Buffer.alloc(2);
      preference.writeUInt16BE(mx.priority);
      answers.push(resourceRecord(TYPE.MX, Buffer.concat([preference, encodeName(mx.exchange)])));
    }
  } else if (entry && type === TYPE.TXT) {
    for (const txt of entry.TXT ?? []) answers.push(resourceRecord(TYPE.TXT, encodeTxt(txt)));
  }

  const header = Buffer.alloc(12);
  header.writeUInt16BE(query.readUInt16BE(0), 0); // id
  const recursionDesired = query.readUInt16BE(2) & 0x0100;
  // QR, AA, RD as asked, RA; RCODE 3 (NXDOMAIN) for unknown names.
  header.writeUInt16BE(0x8000 | 0x0400 | recursionDesired | 0x0080 | (entry ? 0 : 3), 2);
  header.writeUInt16BE(1, 4);
  header.writeUInt16BE(answers.length, 6);
  return Buffer.concat([header, query.subarray(12, questionEnd), ...answers]);
}

/** An answer for the question's name (a compression pointer to offset 12), class IN, TTL 60. */
function resourceRecord(type: number, data: Buffer): Buffer {
  const fixed = Buffer.alloc(12);
  fixed.writeUInt16BE(0xc00c, 0);
  fixed.writeUInt16BE(type, 2);
  fixed.writeUInt16BE(1, 4);
  fixed.writeUInt32BE(60, 6);
  fixed.writeUInt16BE(data.length, 10);
  return Buffer.concat([fixed, data]);
}

function encodeName(name: string): Buffer {
  const parts = name
    .replace(/\.$/, "")
    .split(".")
    .map((label) => Buffer.concat([Buffer.from([label.length]), Buffer.from(label, "latin1")]));
  return Buffer.concat([...parts, Buffer.from([0])]);
}

function encodeTxt(value: string): Buffer {
  const bytes = Buffer.from(value, "utf8");
  const strings: Buffer[] = [];
  for (let start = 0; start < bytes.length || strings.length === 0; start += 255) {
    const chunk = bytes.subarray(start, start + 255);
    strings.push(Buffer.concat([Buffer.from([chunk.length]), chunk]));
  }
  return Buffer.concat(strings);
}

/** A record the API asks a domain's owner to publish (Domain.records). */
export interface RequestedRecord {
  purpose: string;
  type: "MX" | "TXT" | string;
  name: string;
  value: string;
  priority: number | null;
}

/** Publishes the records the API asks for, as a DNS host would, except those of the purposes named. */
export function publishRecords(dns: DnsServer, records: readonly RequestedRecord[], except: string[] = []) {
  for (const record of records) {
    if (except.includes(record.purpose)) continue;
    const entry: ZoneEntry = dns.zone.get(record.name) ?? {};
    if (record.type === "MX") entry.MX = [{ priority: record.priority ?? 10, exchange: record.value }];
    else entry.TXT = [...(entry.TXT ?? []), record.value];
    dns.zone.set(record.name, entry);
  }
}
