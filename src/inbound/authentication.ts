// Who really sent a message received over SMTP from outside (docs/authentication.md): SPF for the
// connecting address, HELO and MAIL FROM; every DKIM signature; DMARC alignment and the From
// domain's policy; ARC. mailauth does the checks and writes the Authentication-Results header; this
// maps its results to the verdicts stored with the message and decides `authenticated`. DNS goes
// through dns-resolver.ts, bounded per lookup and per message, so a dead resolver gives TEMPERROR.
import { type AuthenticateResult, type AuthStatus, authenticate } from "mailauth";
import type { Config } from "../config.ts";
import type { AuthCheckData, AuthVerdict, MessageAuthenticationData } from "../db/types.ts";
import { cachingResolver, type DnsResolve } from "./dns-resolver.ts";

export interface SmtpOrigin {
  /** The connecting client's address. */
  clientAddress: string;
  /** What it said in HELO/EHLO. */
  helo: string | undefined;
  /** MAIL FROM; null for the null sender `<>`. */
  mailFrom: string | null;
}

export interface AuthenticationOutcome {
  verdict: MessageAuthenticationData;
  /** `Authentication-Results: …` (and `Received-SPF: …`) lines, CRLF-terminated, to prepend. */
  header: Buffer;
  /** The name this server signs its Authentication-Results with (MX_HOST or MAIL_DOMAIN). */
  authservId: string;
}

export type Authenticator = (raw: Buffer, origin: SmtpOrigin) => Promise<AuthenticationOutcome>;

/** mailauth's lower-case results, as AuthVerdict. */
const VERDICTS: Record<string, AuthVerdict> = {
  pass: "PASS",
  fail: "FAIL",
  softfail: "SOFTFAIL",
  neutral: "NEUTRAL",
  none: "NONE",
  skipped: "NONE",
  declined: "NONE",
  temperror: "TEMPERROR",
  temperr: "TEMPERROR",
  permerror: "PERMERROR",
  policy: "POLICY",
};

function verdictOf(status: AuthStatus | undefined): AuthVerdict {
  return VERDICTS[status?.result ?? "none"] ?? "NONE";
}

/**
 * A DKIM signature whose body hash does not match failed verification (RFC 6376 6.3: PERMFAIL):
 * FAIL, although mailauth's Authentication-Results line says `dkim=neutral` for it.
 */
function dkimVerdict(status: AuthStatus): AuthVerdict {
  if (status.result === "neutral" && /body hash did not verify/i.test(status.comment ?? "")) return "FAIL";
  return verdictOf(status);
}

const detailOf = (status: AuthStatus | undefined): string | null =>
  typeof status?.comment === "string" && status.comment !== "" ? status.comment : null;

/**
 * `authenticated`: DMARC passes; or the From domain publishes no DMARC record (DMARC NONE) and SPF
 * or a DKIM signature aligned with the From domain passes.
 */
export function isAuthenticated(
  verdict: Pick<MessageAuthenticationData, "spf" | "dmarc">,
  alignedDkimPass: boolean,
): boolean {
  if (verdict.dmarc.result === "PASS") return true;
  if (verdict.dmarc.result !== "NONE" || verdict.dmarc.domain === null) return false;
  return verdict.spf.result === "PASS" || alignedDkimPass;
}

/** mailauth's result as the verdicts stored with the message. */
export function verdictFromResult(result: AuthenticateResult): MessageAuthenticationData {
  const spf: AuthCheckData = result.spf
    ? {
        result: verdictOf(result.spf.status),
        domain: result.spf.domain || null,
        detail: detailOf(result.spf.status),
      }
    : { result: "NONE", domain: null, detail: null };
  // A message without signatures gets one "none" row from mailauth: no signature, no check.
  const signatures = (result.dkim.results ?? []).filter(
    (row) => !(row.status.result === "none" && !row.signingDomain),
  );
  const dkim: AuthCheckData[] = signatures.map((row) => ({
    result: dkimVerdict(row.status),
    domain: row.signingDomain ?? null,
    detail: detailOf(row.status),
  }));
  const dmarc: AuthCheckData = result.dmarc
    ? {
        result: verdictOf(result.dmarc.status),
        domain: result.dmarc.domain || null,
        detail:
          [detailOf(result.dmarc.status), result.dmarc.policy ? `policy=${result.dmarc.policy}` : null]
            .filter(Boolean)
            .join("; ") || null,
      }
    : {
        result: "NONE",
        domain: null,
        detail: "no single From domain to evaluate",
      };
  // mailauth reports "none" when the message carries no ARC set: no chain, no check.
  const arc: AuthCheckData | null =
    result.arc && result.arc.status.result !== "none"
      ? {
          result: verdictOf(result.arc.status),
          domain: result.arc.signature ? result.arc.signature.signingDomain || null : null,
          detail: detailOf(result.arc.status),
        }
      : null;
  const alignedDkimPass = signatures.some(
    (row) => row.status.result === "pass" && Boolean(row.status.aligned),
  );
  return { spf, dkim, dmarc, arc, authenticated: isAuthenticated({ spf, dmarc }, alignedDkimPass) };
}

class DnsDeadline extends Error {
  readonly code = "ETIMEOUT";
}

/**
 * A resolver for one message: each lookup as `shared` answers it, but none past `deadline`: once
 * the message's DNS budget is spent, what is left fails at once (TEMPERROR) instead of queueing.
 */
function boundedResolver(shared: DnsResolve, budgetMs: number): DnsResolve {
  const deadline = Date.now() + budgetMs;
  return (name, type) => {
    const remaining = deadline - Date.now();
    if (remaining <= 0)
      return Promise.reject(new DnsDeadline(`DNS budget of the message spent: ${type} ${name}`));
    let timer: NodeJS.Timeout | undefined;
    return Promise.race([
      shared(name, type),
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new DnsDeadline(`DNS budget of the message spent: ${type} ${name}`)),
          remaining,
        );
      }),
    ]).finally(() => clearTimeout(timer));
  };
}

export function createAuthenticator(
  config: Pick<Config, "dnsServers" | "mailAuthDnsTimeoutMs" | "mailAuthTimeoutMs" | "mxHost" | "mailDomain">,
): Authenticator {
  const shared = cachingResolver({ servers: config.dnsServers, timeoutMs: config.mailAuthDnsTimeoutMs });
  const mta = config.mxHost ?? config.mailDomain;
  return async (raw, origin) => {
    const result = await authenticate(raw, {
      ip: origin.clientAddress,
      ...(origin.helo ? { helo: origin.helo } : {}),
      sender: origin.mailFrom ?? "",
      mta,
      resolver: boundedResolver(shared, config.mailAuthTimeoutMs) as never,
      disableBimi: true,
    });
    return {
      verdict: verdictFromResult(result),
      header: Buffer.from(result.headers, "utf8"),
      authservId: mta,
    };
  };
}

/**
 * `raw` without the Authentication-Results fields that claim to be this server's (RFC 8601 5): a
 * sender could otherwise write its own "dmarc=pass" under our name, for a reader of the headers to
 * trust. Other servers' results are kept. Only the header block is read; the body is untouched.
 */
export function withoutForgedResults(raw: Buffer, authservId: string): Buffer {
  const limit = Math.min(raw.length, 256 * 1024);
  const head = raw.subarray(0, limit).toString("latin1");
  const match = /\r?\n\r?\n/.exec(head);
  const end = match ? match.index + match[0].length : -1;
  if (end === -1) return raw;
  const block = head.slice(0, end);
  const ours = authservId.toLowerCase();
  // Fields with their folded continuation lines, each ending with its line break.
  const fields = block.match(/[^\r\n]*\r?\n(?:[ \t][^\r\n]*\r?\n)*/g) ?? [];
  const kept = fields.filter((field) => {
    const parsed = /^authentication-results[ \t]*:\s*("?)([^;\s"]+)\1/i.exec(field);
    return !parsed || (parsed[2] ?? "").toLowerCase() !== ours;
  });
  if (kept.length === fields.length) return raw;
  return Buffer.concat([Buffer.from(kept.join(""), "latin1"), raw.subarray(end)]);
}
