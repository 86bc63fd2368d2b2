// The DNS records a custom domain must publish (MX, SPF, DKIM, DMARC), its DKIM key, and the
// check of what DNS actually says.
import { generateKeyPair } from "node:crypto";
import { Resolver } from "node:dns/promises";
import { promisify } from "node:util";
import type { Config } from "../config.ts";
import type { JsonObject } from "../db/types.ts";

export const DKIM_SELECTOR = "mailroom";
export const MX_PRIORITY = 10;

export type RecordPurpose = "MX" | "SPF" | "DKIM" | "DMARC";
export type RecordStatus = "PENDING" | "VERIFIED" | "MISSING" | "INVALID" | "ERROR";
export const RECORD_PURPOSES: readonly RecordPurpose[] = ["MX", "SPF", "DKIM", "DMARC"];
/** Mail flows once these match; DMARC is recommended and reported, not required. */
const REQUIRED: ReadonlySet<RecordPurpose> = new Set(["MX", "SPF", "DKIM"]);

export interface RecordCheck {
  status: RecordStatus;
  /** What DNS returned for the record's name and type (for TXT, SPF/DKIM/DMARC-looking values). */
  found: string[];
  /** The resolver's error code, for ERROR. */
  error?: string;
}

export type RecordChecks = Record<RecordPurpose, RecordCheck>;

export interface DnsRecord extends RecordCheck {
  purpose: RecordPurpose;
  type: "MX" | "TXT";
  name: string;
  value: string;
  priority: number | null;
  required: boolean;
}

/** What the records are derived from: a domains row's columns. */
export interface DomainKeys {
  domain: string;
  dkim_selector: string;
  dkim_public_key: string;
}

const generateKeyPairAsync = promisify(generateKeyPair);

/** A new RSA-2048 DKIM key pair, PEM (SPKI public, PKCS#8 private). Off the event loop. */
export async function generateDkimKeyPair(): Promise<{ publicKey: string; privateKey: string }> {
  return generateKeyPairAsync("rsa", {
    modulusLength: 2048,
    publicKeyEncoding: { type: "spki", format: "pem" },
    privateKeyEncoding: { type: "pkcs8", format: "pem" },
  });
}

/** The p= value of a DKIM record: base64 of the DER SubjectPublicKeyInfo, i.e. the PEM body. */
export function dkimPublicKeyValue(publicKeyPem: string): string {
  return publicKeyPem
    .replace(/-----(BEGIN|END) PUBLIC KEY-----/g, "")
    .replace(/\s+/g, "")
    .trim();
}

export function mxHostOf(config: Pick<Config, "mxHost" | "mailDomain">): string {
  return config.mxHost ?? config.mailDomain;
}

/** The records to publish, each with the result of the last check (PENDING when never checked). */
export function expectedRecords(
  config: Pick<Config, "mxHost" | "mailDomain">,
  domain: DomainKeys,
  checks: Partial<RecordChecks> | null,
): DnsRecord[] {
  const mxHost = mxHostOf(config);
  const records: Omit<DnsRecord, keyof RecordCheck | "required">[] = [
    { purpose: "MX", type: "MX", name: domain.domain, value: mxHost, priority: MX_PRIORITY },
    { purpose: "SPF", type: "TXT", name: domain.domain, value: `v=spf1 a:${mxHost} ~all`, priority: null },
    {
      purpose: "DKIM",
      type: "TXT",
      name: `${domain.dkim_selector}._domainkey.${domain.domain}`,
      value: `v=DKIM1; k=rsa; p=${dkimPublicKeyValue(domain.dkim_public_key)}`,
      priority: null,
    },
    {
      purpose: "DMARC",
      type: "TXT",
      name: `_dmarc.${domain.domain}`,
      value: "v=DMARC1; p=quarantine; adkim=r; aspf=r",
      priority: null,
    },
  ];
  return records.map((record) => ({
    ...record,
    required: REQUIRED.has(record.purpose),
    ...(checks?.[record.purpose] ?? { status: "PENDING", found: [] }),
  }));
}

export interface Verification {
  verified: boolean;
  checks: RecordChecks;
  /** Why it is not verified, in words; null when verified. */
  error: string | null;
}

/** Looks the records up (through DNS_SERVERS when set) and compares them with what is expected. */
export async function checkRecords(
  config: Pick<Config, "mxHost" | "mailDomain" | "dnsServers">,
  domain: DomainKeys,
): Promise<Verification> {
  const resolver = new Resolver({ timeout: 2_000, tries: 2 });
  if (config.dnsServers) resolver.setServers(config.dnsServers);
  const expected = expectedRecords(config, domain, null);
  const mxHost = mxHostOf(config).toLowerCase();
  const dkimKey = dkimPublicKeyValue(domain.dkim_public_key);
  const nameOf = (purpose: RecordPurpose) =>
    expected.find((r) => r.purpose === purpose)?.name ?? domain.domain;

  const [mx, spf, dkim, dmarc] = await Promise.all([
    lookup(
      () => resolver.resolveMx(domain.domain),
      (records) => {
        const found = records.map((r) => `${r.priority} ${r.exchange}`);
        const ours = records.some((r) => r.exchange.toLowerCase().replace(/\.$/, "") === mxHost);
        return { status: ours ? "VERIFIED" : "INVALID", found };
      },
    ),
    lookup(
      () => resolver.resolveTxt(domain.domain),
      (records) => {
        const found = joined(records).filter((txt) => /^v=spf1(\s|$)/i.test(txt));
        if (found.length === 0) return { status: "MISSING", found };
        // More than one SPF record is a permanent error for receivers (RFC 7208 4.5).
        const ok = found.length === 1 && spfAuthorizes(found[0] ?? "", mxHost);
        return { status: ok ? "VERIFIED" : "INVALID", found };
      },
    ),
    lookup(
      () => resolver.resolveTxt(nameOf("DKIM")),
      (records) => {
        const found = joined(records);
        const ok = found.some((txt) => dkimMatches(txt, dkimKey));
        return { status: ok ? "VERIFIED" : "INVALID", found };
      },
    ),
    lookup(
      () => resolver.resolveTxt(nameOf("DMARC")),
      (records) => {
        const found = joined(records).filter((txt) => /^v=DMARC1\s*(;|$)/i.test(txt));
        if (found.length === 0) return { status: "MISSING", found };
        // Receivers ignore DMARC when there is more than one record (RFC 7489 6.6.3).
        const ok =
          found.length === 1 && /(^|;)\s*p\s*=\s*(none|quarantine|reject)\s*(;|$)/i.test(found[0] ?? "");
        return { status: ok ? "VERIFIED" : "INVALID", found };
      },
    ),
  ]);
  const checks: RecordChecks = { MX: mx, SPF: spf, DKIM: dkim, DMARC: dmarc };
  const failures = expected
    .filter((record) => record.required && checks[record.purpose].status !== "VERIFIED")
    .map((record) => describeFailure(record, checks[record.purpose]));
  return {
    verified: failures.length === 0,
    checks,
    error: failures.length === 0 ? null : failures.join(" "),
  };
}

function describeFailure(record: DnsRecord, check: RecordCheck): string {
  const what = `${record.purpose} (${record.type} ${record.name})`;
  switch (check.status) {
    case "MISSING":
      return `${what}: no record found.`;
    case "ERROR":
      return `${what}: DNS lookup failed (${check.error ?? "error"}).`;
    default:
      return `${what}: found ${check.found.map((v) => JSON.stringify(v)).join(", ")}, expected ${JSON.stringify(record.value)}.`;
  }
}

/** Runs one lookup; "no such name" and "no such record" are MISSING, any other failure ERROR. */
async function lookup<T>(
  resolve: () => Promise<T[]>,
  judge: (records: T[]) => RecordCheck,
): Promise<RecordCheck> {
  try {
    const records = await resolve();
    return records.length === 0 ? { status: "MISSING", found: [] } : judge(records);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? "ERROR";
    if (code === "ENODATA" || code === "ENOTFOUND") return { status: "MISSING", found: [] };
    return { status: "ERROR", found: [], error: code };
  }
}

/** A TXT record is a list of ≤255-byte strings that together make one value. */
function joined(records: string[][]): string[] {
  return records.map((chunks) => chunks.join(""));
}

function spfAuthorizes(spf: string, mxHost: string): boolean {
  const accepted = new Set([`a:${mxHost}`, `include:${mxHost}`]);
  return spf
    .toLowerCase()
    .split(/\s+/)
    .some((term) => accepted.has(term.replace(/^\+/, "").replace(/\.$/, "")));
}

function dkimMatches(txt: string, publicKey: string): boolean {
  const tags = new Map(
    txt.split(";").flatMap((part) => {
      const eq = part.indexOf("=");
      return eq < 0 ? [] : [[part.slice(0, eq).trim().toLowerCase(), part.slice(eq + 1).trim()] as const];
    }),
  );
  const version = tags.get("v");
  const keyType = tags.get("k");
  if (version !== undefined && version !== "DKIM1") return false;
  if (keyType !== undefined && keyType.toLowerCase() !== "rsa") return false;
  return (tags.get("p") ?? "").replace(/\s+/g, "") === publicKey;
}

/** RecordChecks as stored in domains.dns_checks. */
export function checksToJson(checks: RecordChecks): JsonObject {
  return Object.fromEntries(
    RECORD_PURPOSES.map((purpose) => {
      const { status, found, error } = checks[purpose];
      const json: JsonObject = { status, found };
      if (error !== undefined) json.error = error;
      return [purpose, json];
    }),
  );
}

/** domains.dns_checks back into RecordChecks; anything unrecognised reads as never checked. */
export function checksFromJson(json: JsonObject | null): Partial<RecordChecks> | null {
  if (json === null) return null;
  const checks: Partial<RecordChecks> = {};
  for (const purpose of RECORD_PURPOSES) {
    const value = json[purpose];
    if (value === null || typeof value !== "object" || Array.isArray(value)) continue;
    const status = value.status;
    const found = Array.isArray(value.found)
      ? value.found.filter((v): v is string => typeof v === "string")
      : [];
    if (typeof status !== "string" || !["VERIFIED", "MISSING", "INVALID", "ERROR"].includes(status)) continue;
    checks[purpose] = {
      status: status as RecordStatus,
      found,
      ...(typeof value.error === "string" ? { error: value.error } : {}),
    };
  }
  return checks;
}
