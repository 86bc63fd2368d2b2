// Addresses the service itself speaks for: the system sender, and the local parts of the default
// domain that no tenant may take (docs/permissions.md, "Reserved addresses").
import type { Config } from "../config.ts";

/** The local part of the address system mail (sign-up codes) comes from. */
export const SYSTEM_SENDER_LOCAL_PART = "no-reply";

/**
 * Local parts that mail standards and people expect to reach the operator of a domain (RFC 2142:
 * postmaster, abuse, hostmaster, webmaster, security), that look official (admin, root, noreply), and
 * the system sender's own. A tenant holding one could read bounces and abuse reports meant for the
 * operator, or mail users as the service. `support`, `info` and `sales` stay free: agents are often
 * exactly that.
 */
export const RESERVED_LOCAL_PARTS: ReadonlySet<string> = new Set([
  "postmaster",
  "abuse",
  "hostmaster",
  "webmaster",
  "admin",
  "administrator",
  "root",
  "security",
  "noreply",
  "no-reply",
  "mailer-daemon",
  SYSTEM_SENDER_LOCAL_PART,
]);

/** The system sender, on the default domain. */
export function systemSender(config: Pick<Config, "mailDomain">): string {
  return `${SYSTEM_SENDER_LOCAL_PART}@${config.mailDomain}`;
}

/** Whether `username@domain` is reserved: a reserved local part on the default domain. */
export function isReservedMailbox(
  config: Pick<Config, "mailDomain">,
  username: string,
  domain: string,
): boolean {
  return domain === config.mailDomain && RESERVED_LOCAL_PARTS.has(username.toLowerCase());
}

/** The domain of an address, lower-case. */
export function domainOf(address: string): string {
  return address.slice(address.lastIndexOf("@") + 1).toLowerCase();
}
