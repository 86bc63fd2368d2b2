// Domain names and email addresses as Mailroom accepts them: lower-case, ASCII (IDNs as punycode).
import { domainToASCII } from "node:url";
import { badUserInput } from "../errors.ts";

const LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;
const TOP_LEVEL = /^(?:[a-z]{2,63}|xn--[a-z0-9-]{1,59})$/;
// RFC 5322 dot-atom (quoted local parts are not accepted).
const LOCAL_PART = /^[a-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*$/;

/** A registrable-looking mail domain such as `mail.example.com`, or undefined. */
export function parseDomainName(value: string): string | undefined {
  const trimmed = value.trim().replace(/\.$/, "");
  if (trimmed === "" || /[\s/@:]/.test(trimmed)) return undefined;
  const name = domainToASCII(trimmed);
  const labels = name.split(".");
  if (name.length > 253 || labels.length < 2 || !labels.every((label) => LABEL.test(label))) return undefined;
  if (!TOP_LEVEL.test(labels.at(-1) ?? "")) return undefined;
  // RFC 6761: loopback, never a mail domain.
  if (name === "localhost" || name.endsWith(".localhost")) return undefined;
  return name;
}

export function normalizeDomainName(value: string, field: string): string {
  const name = parseDomainName(value);
  if (name === undefined) {
    throw badUserInput(`${field} must be a domain name such as example.com.`, field);
  }
  return name;
}

/** `local@domain` with a dot-atom local part and a valid domain, lower-cased, or undefined. */
export function parseEmailAddress(value: string): string | undefined {
  const text = value.trim();
  const at = text.lastIndexOf("@");
  if (at <= 0 || text.length > 254) return undefined;
  const local = text.slice(0, at).toLowerCase();
  const domain = parseDomainName(text.slice(at + 1));
  if (local.length > 64 || !LOCAL_PART.test(local) || domain === undefined) return undefined;
  return `${local}@${domain}`;
}
