// The URL this server is reached at, for the absolute links it hands out (download links): PUBLIC_URL
// when the operator set it, else the origin the request itself reached. Why a request's Host header
// may be trusted for this: docs/downloads.md, "The link's address".
import type { Config } from "../config.ts";

/** A host name or IPv4 address, or a bracketed IPv6 address, and an optional port: nothing else. */
const HOST =
  /^(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*|\[[0-9a-f:.]+\])(?::\d{1,5})?$/i;

/** Undefined when PUBLIC_URL is unset and the Host header is missing or not a plain host[:port]. */
export function baseUrlOf(
  config: Pick<Config, "publicUrl">,
  host: string | null | undefined,
  secure: boolean,
): string | undefined {
  if (config.publicUrl !== undefined) return config.publicUrl;
  if (!host || host.length > 260 || !HOST.test(host)) return undefined;
  return `${secure ? "https" : "http"}://${host.toLowerCase()}`;
}
