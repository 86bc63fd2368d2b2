// GET /files/<token>: the bytes behind a download link, streamed from the database a slice at a time
// and written as fast as the client reads them. Whether the link still works is decided by
// src/files/service.ts; here only HTTP: the headers, backpressure, and one answer (404) for every link
// that does not work. docs/downloads.md has the rules and why each header is there.
import type { IncomingMessage, ServerResponse } from "node:http";
import { isDatabaseUnavailable } from "../db/errors.ts";
import { type Download, FileGone, type FileServices, openDownload } from "../files/service.ts";
import type { Logger } from "../logger.ts";
import { DATABASE_RETRY_AFTER_SECONDS } from "./errors.ts";
import { clientAddress } from "./rate-limit.ts";

export const FILES_PATH = "/files/";

/** The route: true when it answered the request (any path under /files/), false to leave it to others. */
export function fileRoute(services: FileServices, logger: Logger) {
  return async (req: IncomingMessage, res: ServerResponse): Promise<boolean> => {
    const path = (req.url ?? "").split("?")[0] ?? "";
    if (!path.startsWith(FILES_PATH)) return false;
    const head = req.method === "HEAD";
    if (req.method !== "GET" && !head) {
      notFound(res, head);
      return true;
    }
    let download: Download | undefined;
    try {
      download = await openDownload(services, path.slice(FILES_PATH.length), {
        clientIp: clientAddress(req, services.config.trustProxy),
      });
    } catch (error) {
      if (isDatabaseUnavailable(error)) {
        // Not "no such link": the link may well work in a moment.
        res
          .writeHead(503, { ...PRIVATE, "Retry-After": String(DATABASE_RETRY_AFTER_SECONDS) })
          .end(head ? undefined : "Service unavailable.\n");
        return true;
      }
      // The token is never logged: whoever reads the log could download with it.
      logger.error({ err: error }, "could not open a download");
      download = undefined;
    }
    if (!download) {
      notFound(res, head);
      return true;
    }
    res.writeHead(200, {
      ...PRIVATE,
      "Content-Type": download.kind === "raw" ? "message/rfc822" : safeContentType(download.contentType),
      "Content-Length": String(download.size),
      "Content-Disposition": contentDisposition(
        download.kind === "raw" ? "message.eml" : (download.filename ?? "attachment"),
      ),
      // Even if a browser were to render it (it is an attachment, so it should not): no script runs, in
      // an origin of its own, and the type is not second-guessed. This origin also serves GraphiQL
      // with the session cookie.
      "Content-Security-Policy": "default-src 'none'; sandbox",
      "X-Content-Type-Options": "nosniff",
      "Referrer-Policy": "no-referrer",
    });
    if (head) {
      res.end();
      return true;
    }
    await stream(download, res, logger);
    return true;
  };
}

/**
 * A link is a bearer credential, revocable at any moment: no cache may keep a copy of what it served
 * or serve it again without asking (docs/downloads.md).
 */
const PRIVATE = {
  "Cache-Control": "private, no-store",
  "Content-Type": "text/plain; charset=utf-8",
  "X-Content-Type-Options": "nosniff",
};

/** One answer for every link that does not work, whatever the reason: no oracle. */
function notFound(res: ServerResponse, head: boolean): void {
  res.writeHead(404, PRIVATE).end(head ? undefined : "Not found.\n");
}

/** Each slice is read only once the previous one has been taken by the socket (or the client left). */
async function stream(download: Download, res: ServerResponse, logger: Logger): Promise<void> {
  try {
    for await (const slice of download.slices()) {
      if (!res.write(slice)) await drained(res);
      // The client left: read nothing more for it.
      if (res.destroyed) return;
    }
    if (!res.destroyed) res.end();
  } catch (error) {
    // The headers promised the whole file: cut the connection, so the client sees a short body and
    // never takes it for the file.
    res.destroy();
    if (!(error instanceof FileGone) && !isDatabaseUnavailable(error)) {
      logger.error({ err: error }, "a download failed part-way");
    }
  }
}

function drained(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off("drain", done);
      res.off("close", done);
      resolve();
    };
    res.on("drain", done);
    res.on("close", done);
  });
}

const TOKEN = "[!#$%&'*+.^_`|~0-9A-Za-z-]+";
/** type/subtype and parameters (RFC 9110 §8.3.1), nothing else: no line break, no byte a header may not hold. */
const MEDIA_TYPE = new RegExp(
  `^${TOKEN}/${TOKEN}(?:[ \\t]*;[ \\t]*${TOKEN}=(?:${TOKEN}|"[\\x20\\x21\\x23-\\x5b\\x5d-\\x7e]*"))*$`,
);

/** The stored type (as the sender declared it) when it is a well-formed media type; otherwise bytes. */
export function safeContentType(stored: string): string {
  return stored.length <= 255 && MEDIA_TYPE.test(stored) ? stored : "application/octet-stream";
}

/**
 * `attachment` with the name twice (RFC 6266): `filename*` as UTF-8 percent-encoded (RFC 8187), which
 * every current browser reads, and `filename` as a plain ASCII fallback. The name comes from the
 * sender of the mail, so whatever it holds is made harmless first: control and format characters
 * (line breaks, which could start a header of their own; bidirectional overrides, which disguise an
 * extension) are dropped, path separators become `_`, and in the fallback every character that is not
 * plain ASCII or could end or escape the quoted string (`"`, `\`, `%`) becomes `_`.
 */
export function contentDisposition(name: string): string {
  let clean = Array.from(
    name
      // A lone surrogate (half a character) cannot be encoded as UTF-8.
      .replace(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g, "\uFFFD")
      .replace(/[\p{Cc}\p{Cf}\u2028\u2029]/gu, "")
      .replace(/[/\\]/g, "_")
      .trim(),
  )
    .slice(0, 255)
    .join("");
  if (/^\.*$/.test(clean)) clean = "attachment";
  const fallback = clean.replace(/[^\x20-\x7e]|["%\\]/gu, "_");
  const encoded = encodeURIComponent(clean).replace(
    /['()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
  return `attachment; filename="${fallback}"; filename*=UTF-8''${encoded}`;
}
