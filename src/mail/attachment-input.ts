// Attachments as a caller gives them (AttachmentInput: a filename, a type, base64 content), checked
// and decoded under the limits of a send: for sendMessage and replyToMessage, and for drafts, whose
// attachments are sent the same way (docs/sending.md, "Draft attachments").
import { detectMimeType } from "nodemailer/lib/mime-funcs";
import { badUserInput } from "../errors.ts";
import type { AttachmentData } from "./message.ts";

export interface AttachmentInput {
  filename: string;
  contentType?: string | null | undefined;
  contentBase64: string;
}

export const MAX_ATTACHMENTS = 100;

export const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

export const CONTENT_TYPE = /^[a-z0-9][a-z0-9!#$&^_.+-]*\/[a-z0-9][a-z0-9!#$&^_.+-]*$/;

export function decodeAttachments(
  list: readonly AttachmentInput[] | null | undefined,
  maxBytes: number,
): AttachmentData[] {
  const attachments = list ?? [];
  if (attachments.length > MAX_ATTACHMENTS) {
    throw badUserInput(`At most ${MAX_ATTACHMENTS} attachments may be sent.`, "attachments");
  }
  let total = 0;
  return attachments.map((attachment, index) => {
    const filename = attachment.filename.trim();
    if (filename === "" || filename.length > 255 || hasControlCharacter(filename)) {
      throw badUserInput(
        `attachments[${index}].filename must be 1 to 255 characters, without control characters.`,
        "attachments",
      );
    }
    const contentType = attachment.contentType?.trim().toLowerCase() || detectMimeType(filename);
    if (!CONTENT_TYPE.test(contentType)) {
      throw badUserInput(
        `attachments[${index}].contentType is not a MIME type such as application/pdf.`,
        "attachments",
      );
    }
    const encoded = attachment.contentBase64.replace(/\s+/g, "");
    // Counted before decoding, so an oversized input is refused without allocating it.
    total += Math.floor((encoded.length * 3) / 4);
    if (total > maxBytes) {
      throw badUserInput(`Attachments may total at most ${maxBytes} bytes.`, "attachments");
    }
    if (encoded.length % 4 !== 0 || !BASE64.test(encoded)) {
      throw badUserInput(`attachments[${index}].contentBase64 is not valid base64.`, "attachments");
    }
    return { filename, contentType, content: Buffer.from(encoded, "base64"), disposition: "attachment" };
  });
}

/** C0 controls and DEL: nothing a header parameter may carry. */
export function hasControlCharacter(value: string): boolean {
  for (let i = 0; i < value.length; i++) {
    const code = value.charCodeAt(i);
    if (code < 0x20 || code === 0x7f) return true;
  }
  return false;
}
