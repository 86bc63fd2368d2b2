// Download links (`Message.rawUrl`, `Attachment.downloadUrl`): minted for the caller that asks, and
// opened for whoever holds one, acting for the credential that minted it, under every rule of
// docs/downloads.md. A link that fails any rule is simply not found: the route answers 404 alike.
import { addressAllowed } from "../auth/allowed-ips.ts";
import type { Authenticator } from "../auth/authenticator.ts";
import { type AuthenticatedPrincipal, type TenantScope, tenantScopeOf } from "../auth/principal.ts";
import type { Clock } from "../clock.ts";
import type { Config } from "../config.ts";
import type { Db } from "../db/database.ts";
import { messagesByIds } from "../mail/repository.ts";
import { recomposed } from "../outbound/compose.ts";
import { derivedServerKey } from "../webhooks/secret.ts";
import {
  type AttachmentFile,
  attachmentFile,
  attachmentSlice,
  draftAttachmentFile,
  draftAttachmentSlice,
  rawMessageFile,
  rawMessageSlice,
} from "./repository.ts";
import { type DownloadGrant, type FileTarget, signToken, verifyToken } from "./token.ts";

export type { FileTarget } from "./token.ts";

export interface FileServices {
  config: Config;
  db: Db;
  authenticator: Authenticator;
  clock: Clock;
}

/**
 * Bytes read per statement while streaming. Each slice is held about three times while in flight (the
 * hex text PostgreSQL sends, the Buffer, the socket's copy), so ten downloads at once hold a few MiB;
 * 80 statements for 20 MiB is about as fast as one (bench/toast-slices.ts).
 */
export const SLICE_BYTES = 256 * 1024;

/** Not 32 bytes long, so it can never be a webhook's salt (src/webhooks/secret.ts). */
const SIGNING_PURPOSE = "mailroom download links, signing key v1";

const signingKeys = new WeakMap<Config, Buffer>();

/** The key links are signed with: derived from the server key, so the same on every node. */
export function linkSigningKey(config: Config): Buffer {
  let key = signingKeys.get(config);
  if (!key) {
    key = derivedServerKey(config, SIGNING_PURPOSE);
    signingKeys.set(config, key);
  }
  return key;
}

/**
 * An absolute link to `target` for `principal`, on `baseUrl` (the server's public URL or the origin the
 * request reached). The caller has already been allowed to read the message it belongs to; the link
 * records who minted it and what that caller could see, and works for FILE_URL_TTL_SECONDS. Stateless:
 * nothing is written.
 */
export function mintDownloadUrl(
  services: Pick<FileServices, "config" | "clock">,
  principal: AuthenticatedPrincipal,
  baseUrl: string,
  target: FileTarget,
): string {
  const token = signToken(linkSigningKey(services.config), {
    target,
    credential:
      principal.kind === "apiKey"
        ? { kind: "apiKey", id: principal.apiKeyId }
        : { kind: "session", id: principal.sessionId },
    scope: tenantScopeOf(principal),
    expiresAt: Math.floor(services.clock.now().getTime() / 1000) + services.config.fileUrlTtlSeconds,
  });
  return `${baseUrl}/files/${token}`;
}

/** Who is downloading: what a rule about the minting credential may need to know of the request. */
export interface DownloadRequest {
  /** The client's address (src/server/rate-limit.ts's clientAddress). */
  clientIp: string;
}

export interface Download {
  kind: FileTarget["kind"];
  contentType: string;
  /** The attachment's name as stored (untrusted text); null for a raw message and unnamed parts. */
  filename: string | null;
  size: number;
  /**
   * The content in slices of at most SLICE_BYTES, each read from the database when asked for (so as
   * fast as the client takes them, and no more is held). Throws FileGone when the file goes out of
   * reach part-way (the message deleted or hidden meanwhile).
   */
  slices(): AsyncGenerator<Buffer>;
}

export class FileGone extends Error {
  override name = "FileGone";
}

/**
 * The file a token grants, if every rule still holds: the token is ours and intact, it has not expired,
 * its minting credential may still download (downloadScope), and the file is in that credential's
 * reach now. Undefined otherwise, whatever the reason.
 */
export async function openDownload(
  services: FileServices,
  token: string,
  request: DownloadRequest,
): Promise<Download | undefined> {
  const grant = verifyToken(linkSigningKey(services.config), token);
  if (!grant || services.clock.now().getTime() >= grant.expiresAt * 1000) return undefined;
  const scope = await downloadScope(services, grant, request);
  if (!scope) return undefined;
  const { db } = services;
  const { target } = grant;
  if (target.kind === "attachment") {
    const file = await attachmentFile(db, scope, target.messageId, target.attachmentId);
    return (
      file &&
      attachmentDownload(target.kind, file, (offset, length) =>
        attachmentSlice(db, scope, target.messageId, target.attachmentId, offset, length),
      )
    );
  }
  if (target.kind === "draftAttachment") {
    const file = await draftAttachmentFile(db, scope, target.draftId, target.attachmentId);
    return (
      file &&
      attachmentDownload(target.kind, file, (offset, length) =>
        draftAttachmentSlice(db, scope, target.draftId, target.attachmentId, offset, length),
      )
    );
  }
  const raw = await rawMessageFile(db, scope, target.messageId);
  if (!raw) return undefined;
  if (raw.size === null) return recomposedDownload(db, scope, target.messageId);
  return {
    kind: "raw",
    contentType: "message/rfc822",
    filename: null,
    size: raw.size,
    slices: () =>
      sliced(raw.size ?? 0, (offset, length) => rawMessageSlice(db, scope, target.messageId, offset, length)),
  };
}

/**
 * Whether the credential that minted a link may still download through it, and the scope it downloads
 * with; undefined when it may not. The one place every rule about the minting credential is decided:
 *  - it still exists and has not expired (a deleted key, an expired key, a deleted or expired session:
 *    read now, by id, so a deletion on any node counts at once);
 *  - it still may read messages (MESSAGE_READ; for a draft's attachment, drafts: DRAFT_READ) within
 *    the same pod and inbox;
 *  - it sees the narrower of then and now: a label hidden from it when it minted the link, or hidden
 *    now, hides the file.
 *  - a key with an IP allow-list (docs/permissions.md, "Keys in production") is refused when
 *    `request.clientIp` is outside it, as on every other use of the key.
 */
export async function downloadScope(
  services: Pick<FileServices, "authenticator">,
  grant: DownloadGrant,
  request: DownloadRequest,
): Promise<TenantScope | undefined> {
  const minted = grant.scope;
  const principal = await services.authenticator.byId({
    kind: grant.credential.kind,
    orgId: minted.orgId,
    id: grant.credential.id,
  });
  const reads = grant.target.kind === "draftAttachment" ? "DRAFT_READ" : "MESSAGE_READ";
  if (!principal?.permissions.has(reads)) return undefined;
  if (!addressAllowed(principal.allowedIps, request.clientIp)) return undefined;
  const now = tenantScopeOf(principal);
  if (now.podId !== minted.podId || now.inboxId !== minted.inboxId) return undefined;
  return { ...minted, hiddenLabels: [...new Set([...minted.hiddenLabels, ...now.hiddenLabels])] };
}

/** A message's or a draft's attachment, read a slice at a time with `read`. */
function attachmentDownload(
  kind: "attachment" | "draftAttachment",
  file: AttachmentFile,
  read: (offset: number, length: number) => Promise<Buffer | undefined>,
): Download {
  return {
    kind,
    contentType: file.contentType,
    filename: file.filename,
    size: file.size,
    slices: () => sliced(file.size, read),
  };
}

async function* sliced(
  size: number,
  read: (offset: number, length: number) => Promise<Buffer | undefined>,
): AsyncGenerator<Buffer> {
  for (let offset = 0; offset < size; offset += SLICE_BYTES) {
    const length = Math.min(SLICE_BYTES, size - offset);
    const slice = await read(offset, length);
    if (slice?.length !== length) throw new FileGone();
    yield slice;
  }
}

/**
 * A message stored without its raw form (none of today's mail paths stores one so; test fixtures and
 * older rows may) is served as forwarding attaches it: composed again from its parts. That holds the
 * message in memory once, as forwarding does.
 */
async function recomposedDownload(
  db: Db,
  scope: TenantScope,
  messageId: string,
): Promise<Download | undefined> {
  const [message] = await messagesByIds(db, scope, [messageId]);
  if (!message) return undefined;
  const raw = await recomposed(db, scope, message);
  return {
    kind: "raw",
    contentType: "message/rfc822",
    filename: null,
    size: raw.length,
    slices: async function* () {
      for (let offset = 0; offset < raw.length; offset += SLICE_BYTES) {
        yield raw.subarray(offset, offset + SLICE_BYTES);
      }
    },
  };
}
