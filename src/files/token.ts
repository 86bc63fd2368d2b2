// Download tokens: the `<token>` of a /files/<token> URL says what to serve, for whom and until when,
// and is signed so that nobody can make one or change a bit of one. Nothing is stored per token:
// minting a page of 200 links costs 200 HMACs and no write. Design and rules: docs/downloads.md.
//
// Layout (then base64url, unpadded):
//   version (1 byte) · flags (1) · expiry (uint32, Unix seconds) ·
//   org id, target id, [message id], credential id, [pod id], [inbox id] (unsigned LEB128 varints) ·
//   tag (the first 16 bytes of HMAC-SHA256 over everything before it)
// flags: bit 0 the target (0 the raw message, 1 an attachment, followed by its message's id), bit 1
// the credential (0 an API key,
// 1 a session), bit 2 a pod id follows, bit 3 an inbox id follows, bits 4–6 the hidden labels
// (HIDDEN_LABELS order), bit 7 with bit 0: the attachment is a draft's, and the id after it is the
// draft's (zero otherwise; tokens written before drafts had attachments read as they always did).
import { createHmac, timingSafeEqual } from "node:crypto";
import { HIDDEN_LABEL_PERMISSIONS, type TenantScope } from "../auth/principal.ts";

/**
 * What a link serves. An attachment names its message too: the download checks that the attachment
 * still belongs to it, so a token can only ever mean the one file it was minted for.
 */
export type FileTarget =
  | { kind: "raw"; messageId: string }
  | { kind: "attachment"; messageId: string; attachmentId: string }
  | { kind: "draftAttachment"; draftId: string; attachmentId: string };

/** The credential that minted a link: the link works only while it does. */
export interface CredentialRef {
  kind: "apiKey" | "session";
  id: string;
}

export interface DownloadGrant {
  target: FileTarget;
  credential: CredentialRef;
  /** The minting caller's scope and hidden labels, as they were when it minted the link. */
  scope: TenantScope;
  /** Unix seconds; the link answers 404 from this instant on. */
  expiresAt: number;
}

const VERSION = 1;
/** 128 bits: forging a tag takes about 2^128 tries; a link stays short enough to paste. */
const TAG_BYTES = 16;
const HIDDEN_LABELS = Object.keys(HIDDEN_LABEL_PERMISSIONS);
const MAX_ID = (1n << 63n) - 1n;
/** Longer than any token this module writes (6 + 6 × 9 + 16 bytes, base64url): refused unread. */
const MAX_TOKEN_LENGTH = 102;
const TOKEN_PATTERN = /^[A-Za-z0-9_-]+$/;

export function signToken(key: Buffer, grant: DownloadGrant): string {
  const { target, credential, scope } = grant;
  let flags = 0;
  if (target.kind === "attachment") flags |= 1;
  if (target.kind === "draftAttachment") flags |= 1 | 0x80;
  if (credential.kind === "session") flags |= 2;
  if (scope.podId !== null) flags |= 4;
  if (scope.inboxId !== null) flags |= 8;
  HIDDEN_LABELS.forEach((label, bit) => {
    if (scope.hiddenLabels.includes(label)) flags |= 1 << (4 + bit);
  });
  const header = Buffer.alloc(6);
  header.writeUInt8(VERSION, 0);
  header.writeUInt8(flags, 1);
  header.writeUInt32BE(grant.expiresAt, 2);
  const ids = [
    scope.orgId,
    ...(target.kind === "raw"
      ? [target.messageId]
      : [target.attachmentId, target.kind === "attachment" ? target.messageId : target.draftId]),
    credential.id,
    ...(scope.podId === null ? [] : [scope.podId]),
    ...(scope.inboxId === null ? [] : [scope.inboxId]),
  ];
  const body = Buffer.concat([header, ...ids.map(varint)]);
  return Buffer.concat([body, tag(key, body)]).toString("base64url");
}

/** The grant a token carries, or undefined for anything this module did not sign with `key` as it is. */
export function verifyToken(key: Buffer, token: string): DownloadGrant | undefined {
  if (token.length > MAX_TOKEN_LENGTH || !TOKEN_PATTERN.test(token)) return undefined;
  const bytes = Buffer.from(token, "base64url");
  // One spelling per token: base64url that decodes to the same bytes another way is not ours.
  if (bytes.length <= 6 + TAG_BYTES || bytes.toString("base64url") !== token) return undefined;
  const body = bytes.subarray(0, bytes.length - TAG_BYTES);
  if (!timingSafeEqual(bytes.subarray(bytes.length - TAG_BYTES), tag(key, body))) return undefined;
  // Signed by us: from here on the bytes are as we wrote them, but are still read strictly.
  if (body.readUInt8(0) !== VERSION) return undefined;
  const flags = body.readUInt8(1);
  const isAttachment = (flags & 1) !== 0;
  const ofDraft = (flags & 0x80) !== 0;
  if (ofDraft && !isAttachment) return undefined;
  const expiresAt = body.readUInt32BE(2);
  const ids: string[] = [];
  let offset = 6;
  while (offset < body.length) {
    const read = readVarint(body, offset);
    if (!read) return undefined;
    ids.push(read.value);
    offset = read.next;
  }
  const hasPod = (flags & 4) !== 0;
  const hasInbox = (flags & 8) !== 0;
  if (ids.length !== 3 + Number(isAttachment) + Number(hasPod) + Number(hasInbox)) return undefined;
  const [orgId, targetId, ...rest] = ids as [string, string, ...string[]];
  const parent = isAttachment ? (rest.shift() as string) : undefined;
  const credentialId = rest.shift() as string;
  const podId = hasPod ? (rest.shift() as string) : null;
  const inboxId = hasInbox ? (rest.shift() as string) : null;
  return {
    target:
      parent === undefined
        ? { kind: "raw", messageId: targetId }
        : ofDraft
          ? { kind: "draftAttachment", draftId: parent, attachmentId: targetId }
          : { kind: "attachment", messageId: parent, attachmentId: targetId },
    credential: { kind: flags & 2 ? "session" : "apiKey", id: credentialId },
    scope: {
      orgId,
      podId,
      inboxId,
      hiddenLabels: HIDDEN_LABELS.filter((_, bit) => (flags & (1 << (4 + bit))) !== 0),
    },
    expiresAt,
  };
}

function tag(key: Buffer, body: Buffer): Buffer {
  return createHmac("sha256", key).update(body).digest().subarray(0, TAG_BYTES);
}

/** A row id (a positive bigint, as text) as an unsigned LEB128 varint. */
function varint(id: string): Buffer {
  if (!/^[1-9]\d{0,18}$/.test(id) || BigInt(id) > MAX_ID) throw new Error(`not a row id: ${id}`);
  let value = BigInt(id);
  const bytes: number[] = [];
  do {
    let byte = Number(value & 0x7fn);
    value >>= 7n;
    if (value > 0n) byte |= 0x80;
    bytes.push(byte);
  } while (value > 0n);
  return Buffer.from(bytes);
}

function readVarint(bytes: Buffer, start: number): { value: string; next: number } | undefined {
  let value = 0n;
  let shift = 0n;
  for (let offset = start; offset < bytes.length && offset < start + 9; offset++) {
    const byte = bytes.readUInt8(offset);
    value |= BigInt(byte & 0x7f) << shift;
    shift += 7n;
    if ((byte & 0x80) === 0) {
      // The shortest spelling only, and a row id (positive, within bigint).
      if (byte === 0 && offset > start) return undefined;
      if (value === 0n || value > MAX_ID) return undefined;
      return { value: value.toString(), next: offset + 1 };
    }
  }
  return undefined;
}
