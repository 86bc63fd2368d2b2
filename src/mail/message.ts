// A message on its way into an inbox: what the mail paths (inbound, outbound, hosted delivery) hand
// the store, and what the store reports back of each copy.
import type { MessageAuthenticationData } from "../db/types.ts";
import type { HeaderField } from "./headers.ts";

export interface InboxRef {
  orgId: string;
  podId: string;
  inboxId: string;
}

export interface AttachmentData {
  filename: string | null;
  contentType: string;
  content: Buffer;
  contentId?: string | null | undefined;
  disposition?: string | null | undefined;
}

export interface MessageData {
  messageIdHeader: string;
  /**
   * What tells a retried delivery from a different message with the same Message-ID (digest.ts):
   * inbound mail always has one. Without one (mail composed here, whose Message-ID is its own),
   * the Message-ID alone identifies the message.
   */
  contentDigest?: Buffer | undefined;
  from: string;
  /** The sender's display name ("Ann Lee" in `Ann Lee <ann@example.com>`), when it has one. */
  fromName?: string | null | undefined;
  to: readonly string[];
  /** Display names of `to`, in the same order: null where a recipient has none. */
  toNames?: readonly (string | null)[] | undefined;
  cc?: readonly string[] | undefined;
  ccNames?: readonly (string | null)[] | undefined;
  bcc?: readonly string[] | undefined;
  replyTo?: readonly string[] | undefined;
  subject: string | null;
  text: string | null;
  html: string | null;
  inReplyTo: string | null;
  references: readonly string[];
  labels: readonly string[];
  direction: "INBOUND" | "OUTBOUND";
  deliveryStatus?: "QUEUED" | "DELIVERED" | "BOUNCED" | null | undefined;
  rawMime?: Buffer | null | undefined;
  /** Every header field of the raw message, in order (mail/headers.ts). */
  headers?: readonly HeaderField[] | undefined;
  sizeBytes: number;
  attachments?: readonly AttachmentData[] | undefined;
  createdAt?: Date | undefined;
  /** SPF, DKIM, DMARC and ARC verdicts of mail received from outside; none for mail sent here. */
  authentication?: MessageAuthenticationData | null | undefined;
}

export interface NewMessage {
  inbox: InboxRef;
  data: MessageData;
}

export interface StoredCopy {
  /** Row ids of the message and its thread. */
  messageId: string;
  threadId: string;
  labels: string[];
  /** False when its inbox already held this message (a retried delivery): nothing was written. */
  created: boolean;
}
