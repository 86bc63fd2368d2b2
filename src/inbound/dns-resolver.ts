// The DNS lookups of inbound authentication (docs/authentication.md): node:dns through the system's
// resolvers or DNS_SERVERS, each lookup bounded by a timeout, answers and "no such record" kept a
// short while. A resolver that is slow or dead costs a message at most the timeout per lookup it
// needs, and the check reports TEMPERROR; ingest never waits on DNS longer than that.
import { Resolver } from "node:dns/promises";

/** The resolver mailauth calls: `resolve(name, type)` as node:dns answers it, errors carrying its codes. */
export type DnsResolve = (name: string, type: string) => Promise<unknown>;

export interface CachingResolverOptions {
  /** `host[:port]` servers; undefined: the system's resolvers. */
  servers?: readonly string[] | undefined;
  /** The longest one lookup may take before it fails with ETIMEOUT. */
  timeoutMs: number;
  /** How long an answer (or a definite "no such name/record") is reused. */
  ttlMs?: number;
  /** At most this many answers are kept; the oldest go first. */
  maxEntries?: number;
}

/** Answers that say the record does not exist, as opposed to "could not find out". */
const DEFINITE = new Set(["ENOTFOUND", "ENODATA", "NXDOMAIN"]);

class DnsError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export function cachingResolver(options: CachingResolverOptions): DnsResolve {
  const ttlMs = options.ttlMs ?? 60_000;
  const maxEntries = options.maxEntries ?? 5_000;
  // One attempt per lookup, c-ares bounded by the same timeout: the race below is the real bound.
  const resolver = new Resolver({ timeout: options.timeoutMs, tries: 1 });
  if (options.servers?.length) resolver.setServers([...options.servers]);
  type Entry = { at: number; answer: Promise<unknown> };
  const cache = new Map<string, Entry>();

  const lookup = (name: string, type: string): Promise<unknown> => {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new DnsError("ETIMEOUT", `DNS ${type} ${name}: no answer in ${options.timeoutMs} ms`)),
        options.timeoutMs,
      );
    });
    return Promise.race([resolver.resolve(name, type), timeout]).finally(() => clearTimeout(timer));
  };

  return (name, type) => {
    const key = `${type} ${name.toLowerCase()}`;
    const now = Date.now();
    const cached = cache.get(key);
    if (cached && now - cached.at < ttlMs) return cached.answer;
    const answer = lookup(name, type);
    // Concurrent lookups of one name share the first; a failure other than a definite "none" is
    // forgotten at once, so the next message asks again.
    cache.delete(key);
    cache.set(key, { at: now, answer });
    answer.catch((error: { code?: string }) => {
      if (!DEFINITE.has(error?.code ?? "") && cache.get(key)?.answer === answer) cache.delete(key);
    });
    while (cache.size > maxEntries) {
      const oldest = cache.keys().next().value;
      if (oldest === undefined) break;
      cache.delete(oldest);
    }
    return answer;
  };
}
