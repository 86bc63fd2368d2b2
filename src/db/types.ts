// Kysely table types, written by hand to match db/migrations (property names = column names).
import type { ColumnType, GeneratedAlways } from "kysely";

/** int8: node-postgres returns it as a string (it may exceed Number.MAX_SAFE_INTEGER). */
export type Int8 = ColumnType<string, string | number | bigint, string | number | bigint>;
/** An identity column (`GENERATED ALWAYS AS IDENTITY`): never inserted or updated. */
export type Id = GeneratedAlways<string>;
/** int8[] comes back as string[] too. */
export type Int8List = ColumnType<string[], Array<string | number>, Array<string | number>>;
export type Timestamp = ColumnType<Date, Date | string, Date | string>;
/** timestamptz NOT NULL DEFAULT now(). */
export type GeneratedTimestamp = ColumnType<Date, Date | string | undefined, Date | string>;
/** text[] NOT NULL DEFAULT '{}'. */
export type TextArrayWithDefault = ColumnType<string[], string[] | undefined, string[]>;

export type JsonPrimitive = string | number | boolean | null;
export type JsonValue = JsonPrimitive | JsonValue[] | JsonObject;
export interface JsonObject {
  [key: string]: JsonValue;
}

export type OrganizationStatus = "ACTIVE" | "AGENT_UNVERIFIED" | "AGENT_VERIFIED";
export type MembershipRole = "ADMIN" | "MEMBER";
export type DomainStatus = "PENDING" | "VERIFIED" | "FAILED";
export type MessageDirection = "INBOUND" | "OUTBOUND";
export type DeliveryStatus = "QUEUED" | "DELIVERED" | "BOUNCED";
export type WebhookDeliveryStatus = "PENDING" | "SUCCEEDED" | "FAILED";
export type DraftSendStatus = "DRAFT" | "SCHEDULED" | "SENDING" | "SENT" | "FAILED" | "PENDING_APPROVAL";
export type ListDirection = "SEND" | "RECEIVE";
export type ListType = "ALLOW" | "BLOCK";
export type KeyScope = "ORGANIZATION" | "POD" | "INBOX";
export type EventType =
  | "MESSAGE_RECEIVED"
  | "MESSAGE_SENT"
  | "MESSAGE_DELIVERED"
  | "MESSAGE_BOUNCED"
  | "MESSAGE_REJECTED"
  | "DOMAIN_VERIFIED"
  | "DRAFT_PENDING_APPROVAL";
/** The permission flags as stored in `api_keys.permissions` (lower snake case). */
export type PermissionFlag =
  | "inbox_read"
  | "inbox_create"
  | "inbox_update"
  | "inbox_delete"
  | "thread_read"
  | "thread_delete"
  | "message_read"
  | "message_send"
  | "message_update"
  | "label_spam_read"
  | "label_blocked_read"
  | "label_trash_read"
  | "draft_read"
  | "draft_create"
  | "draft_update"
  | "draft_delete"
  | "draft_send"
  | "webhook_read"
  | "webhook_create"
  | "webhook_update"
  | "webhook_delete"
  | "domain_read"
  | "domain_create"
  | "domain_update"
  | "domain_delete"
  | "list_entry_read"
  | "list_entry_create"
  | "list_entry_delete"
  | "metrics_read"
  | "api_key_read"
  | "api_key_create"
  | "api_key_delete"
  | "pod_read"
  | "pod_create"
  | "pod_delete";

export interface OrganizationTable {
  id: Id;
  name: string;
  status: ColumnType<OrganizationStatus, OrganizationStatus | undefined, OrganizationStatus>;
  created_at: GeneratedTimestamp;
  updated_at: GeneratedTimestamp;
}

/** Global (not a tenant table). */
export interface UserTable {
  id: Id;
  email: string;
  /** argon2id; null = password sign-in disabled. */
  password_hash: string | null;
  created_at: GeneratedTimestamp;
  updated_at: GeneratedTimestamp;
}

export interface MembershipTable {
  org_id: Int8;
  user_id: Int8;
  role: MembershipRole;
  created_at: GeneratedTimestamp;
}

export interface SessionTable {
  org_id: Int8;
  id: Id;
  user_id: Int8;
  created_at: GeneratedTimestamp;
  expires_at: Timestamp;
  last_seen_at: GeneratedTimestamp;
}

export interface PodTable {
  org_id: Int8;
  id: Id;
  name: string;
  client_id: string | null;
  created_at: GeneratedTimestamp;
  updated_at: GeneratedTimestamp;
}

export interface DomainTable {
  org_id: Int8;
  id: Id;
  /** null = shared by every pod of the organization. */
  pod_id: Int8 | null;
  domain: string;
  status: ColumnType<DomainStatus, DomainStatus | undefined, DomainStatus>;
  dkim_selector: string;
  /** PEM; needed to sign outbound mail, never exposed. */
  dkim_private_key: string;
  dkim_public_key: string;
  last_error: string | null;
  verified_at: Timestamp | null;
  last_checked_at: Timestamp | null;
  /** Per-record results of the last verification (migration 000002); null = never checked. */
  dns_checks: ColumnType<
    JsonObject | null,
    JsonObject | string | null | undefined,
    JsonObject | string | null
  >;
  created_at: GeneratedTimestamp;
  updated_at: GeneratedTimestamp;
}

export type AuthVerdict =
  | "PASS"
  | "FAIL"
  | "SOFTFAIL"
  | "NEUTRAL"
  | "NONE"
  | "TEMPERROR"
  | "PERMERROR"
  | "POLICY";

export interface AuthCheckData {
  result: AuthVerdict;
  domain: string | null;
  detail: string | null;
}

/** messages.authentication, as stored. */
export interface MessageAuthenticationData {
  spf: AuthCheckData;
  dkim: AuthCheckData[];
  dmarc: AuthCheckData;
  arc: AuthCheckData | null;
  authenticated: boolean;
}

export interface InboxTable {
  org_id: Int8;
  id: Id;
  pod_id: Int8;
  username: string;
  domain: string;
  /** = username@domain, lower-case (CHECKed). */
  email: string;
  display_name: string | null;
  client_id: string | null;
  /** Refuse mail whose DMARC verdict is FAIL (`550 5.7.1` at the end of DATA). */
  reject_unauthenticated: ColumnType<boolean, boolean | undefined, boolean>;
  created_at: GeneratedTimestamp;
  updated_at: GeneratedTimestamp;
}

export interface ThreadTable {
  org_id: Int8;
  id: Id;
  pod_id: Int8;
  inbox_id: Int8;
  subject: string | null;
  created_at: GeneratedTimestamp;
  last_message_at: GeneratedTimestamp;
}

/** Where callers hiding some labels see a thread that holds such mail (db/migrations/…_thread_visibility.ts). */
export interface ThreadVisibilityTable {
  org_id: Int8;
  thread_id: Int8;
  pod_id: Int8;
  inbox_id: Int8;
  /** Bit i set: HIDDEN_LABEL_PERMISSIONS' i-th label (spam, blocked, trash) is hidden. */
  hidden_mask: number;
  last_message_at: Timestamp;
}

export interface MessageTable {
  org_id: Int8;
  id: Id;
  pod_id: Int8;
  inbox_id: Int8;
  thread_id: Int8;
  /** RFC 5322 Message-ID. */
  message_id_header: string;
  /** Inbound mail's content digest (src/mail/digest.ts); empty for mail composed here. */
  content_digest: ColumnType<Buffer, Buffer | undefined, Buffer>;
  from_address: string;
  /** The sender's display name; null without one, and for mail stored before names were kept. */
  from_name: string | null;
  to_addresses: TextArrayWithDefault;
  /** Display names of to_addresses, in order (null elements: no name); null for older mail. */
  to_names: ColumnType<
    (string | null)[] | null,
    (string | null)[] | null | undefined,
    (string | null)[] | null
  >;
  cc_names: ColumnType<
    (string | null)[] | null,
    (string | null)[] | null | undefined,
    (string | null)[] | null
  >;
  cc_addresses: TextArrayWithDefault;
  bcc_addresses: TextArrayWithDefault;
  reply_to_addresses: TextArrayWithDefault;
  subject: string | null;
  text_body: string | null;
  html_body: string | null;
  preview: string | null;
  labels: TextArrayWithDefault;
  in_reply_to: string | null;
  reference_ids: TextArrayWithDefault;
  direction: MessageDirection;
  /** Outbound only. */
  delivery_status: DeliveryStatus | null;
  delivery_error: string | null;
  delivered_at: Timestamp | null;
  size_bytes: ColumnType<number, number | undefined, number>;
  raw_mime: Buffer | null;
  /** Every header field, in order, as [name, value]; null for mail stored before they were kept. */
  headers: ColumnType<[string, string][] | null, string | null | undefined, string | null>;
  has_attachments: ColumnType<boolean, boolean | undefined, boolean>;
  /** To and Cc addresses and names, lower-case, for MessageFilter's `to` (trigram index). */
  recipient_text: ColumnType<string, string | undefined, string>;
  /** SPF, DKIM, DMARC and ARC verdicts of mail received from outside; null otherwise (docs/authentication.md). */
  authentication: ColumnType<MessageAuthenticationData | null, string | null | undefined, string | null>;
  /** authentication.authenticated, for MessageFilter.authenticated; null where authentication is. */
  authenticated: ColumnType<boolean | null, boolean | null | undefined, boolean | null>;
  created_at: GeneratedTimestamp;
  updated_at: GeneratedTimestamp;
}

export interface AttachmentTable {
  org_id: Int8;
  id: Id;
  message_id: Int8;
  filename: string | null;
  content_type: string;
  size_bytes: number;
  content_id: string | null;
  disposition: string | null;
  content: Buffer;
  created_at: GeneratedTimestamp;
}

export interface DraftTable {
  org_id: Int8;
  id: Id;
  pod_id: Int8;
  inbox_id: Int8;
  to_addresses: TextArrayWithDefault;
  cc_addresses: TextArrayWithDefault;
  bcc_addresses: TextArrayWithDefault;
  subject: string | null;
  text_body: string | null;
  html_body: string | null;
  /** A message of the same inbox; cleared when that message is deleted. */
  in_reply_to_message_id: Int8 | null;
  created_at: GeneratedTimestamp;
  updated_at: GeneratedTimestamp;
  /** When a SCHEDULED draft is to be sent (db/migrations/…_scheduled_drafts.ts). */
  send_at: Timestamp | null;
  send_status: ColumnType<DraftSendStatus, DraftSendStatus | undefined, DraftSendStatus>;
  failure_reason: string | null;
  reply_all: ColumnType<boolean, boolean | undefined, boolean>;
  /** A message of the same inbox this draft forwards; cleared when that message is deleted. */
  forward_of_message_id: Int8 | null;
  /** The message a SENT draft became. */
  sent_message_id: Int8 | null;
  /** Written by an approval-bound key: its sends stop at PENDING_APPROVAL (docs/sending.md). */
  requires_approval: ColumnType<boolean, boolean | undefined, boolean>;
}

/** A draft's attachment, sent with it (docs/sending.md, "Draft attachments"). */
export interface DraftAttachmentTable {
  org_id: Int8;
  id: Id;
  draft_id: Int8;
  filename: string;
  content_type: string;
  size_bytes: number;
  content: Buffer;
  created_at: GeneratedTimestamp;
}

export interface WebhookTable {
  org_id: Int8;
  id: Id;
  pod_id: Int8 | null;
  inbox_id: Int8 | null;
  url: string;
  event_types: EventType[];
  /** Delivery filters; null = no filter. */
  pod_ids: Int8List | null;
  inbox_ids: Int8List | null;
  /** The signing secret is derived from a server key and this salt. */
  secret_salt: Buffer;
  enabled: ColumnType<boolean, boolean | undefined, boolean>;
  disabled_reason: string | null;
  created_at: GeneratedTimestamp;
  updated_at: GeneratedTimestamp;
  /** Who made it (or last changed it): one of the two (db/migrations/…_webhook_visibility.ts). */
  created_by_api_key_id: Int8 | null;
  created_by_user_id: Int8 | null;
  /** The creator's visibility; its scope is pod_id/inbox_id. */
  message_read: ColumnType<boolean, boolean | undefined, boolean>;
  domain_read: ColumnType<boolean, boolean | undefined, boolean>;
  draft_read: ColumnType<boolean, boolean | undefined, boolean>;
  hidden_labels: ColumnType<string[], string[] | undefined, string[]>;
}

export interface WebhookDeliveryTable {
  org_id: Int8;
  id: Id;
  webhook_id: Int8;
  event_id: Int8;
  attempts: ColumnType<number, number | undefined, number>;
  status: ColumnType<WebhookDeliveryStatus, WebhookDeliveryStatus | undefined, WebhookDeliveryStatus>;
  last_status_code: number | null;
  last_error: string | null;
  next_attempt_at: Timestamp | null;
  delivered_at: Timestamp | null;
  created_at: GeneratedTimestamp;
  updated_at: GeneratedTimestamp;
}

export interface ListEntryTable {
  org_id: Int8;
  id: Id;
  pod_id: Int8 | null;
  inbox_id: Int8 | null;
  direction: ListDirection;
  type: ListType;
  /** Lower-case email address or domain. */
  entry: string;
  created_at: GeneratedTimestamp;
  reason: string | null;
  /** Added by the system (a suppression after a permanent failure); may be deleted, never created. */
  read_only: ColumnType<boolean, boolean | undefined, boolean>;
}

export interface ApiKeyTable {
  org_id: Int8;
  id: Id;
  name: string;
  prefix: string;
  scope: KeyScope;
  pod_id: Int8 | null;
  inbox_id: Int8 | null;
  /** null = full access within the scope's ceiling. */
  permissions: PermissionFlag[] | null;
  created_by_api_key_id: Int8 | null;
  created_by_user_id: Int8 | null;
  created_at: GeneratedTimestamp;
  last_used_at: Timestamp | null;
  expires_at: Timestamp | null;
  /** Normalized addresses and CIDR blocks the key may be used from; null = any address. */
  allowed_ips: string[] | null;
  /** Mail this key (or a key it creates) sends waits for approval. */
  send_requires_approval: ColumnType<boolean, boolean | undefined, boolean>;
}

export interface EventTable {
  org_id: Int8;
  /** Drawn from one sequence; with `xid`, the event's place in its organization's order. */
  id: Id;
  /**
   * The id of the transaction that wrote it (xid8 as decimal text; "0" for events older than this
   * column): events are delivered in (xid, id) order (docs/events.md, "Order without a lock").
   */
  xid: ColumnType<string, never, never>;
  type: EventType;
  pod_id: Int8 | null;
  inbox_id: Int8 | null;
  thread_id: Int8 | null;
  message_id: Int8 | null;
  domain_id: Int8 | null;
  /** pg sends a JS object as JSON; pass a string for anything else (a bare array would become a PG array). */
  payload: ColumnType<JsonObject, JsonObject | string | undefined, JsonObject | string>;
  created_at: GeneratedTimestamp;
  /** The message's labels when the event was written; null when it is not about a message. */
  message_labels: ColumnType<string[] | null, string[] | null | undefined, string[] | null>;
}

export interface AgentSignupTable {
  org_id: Int8;
  id: Id;
  human_email: string;
  username: string;
  inbox_id: Int8 | null;
  api_key_id: Int8 | null;
  /** argon2 hash of the one-time code. */
  otp_hash: string | null;
  otp_expires_at: Timestamp | null;
  otp_attempts: ColumnType<number, number | undefined, number>;
  verified_at: Timestamp | null;
  created_at: GeneratedTimestamp;
  updated_at: GeneratedTimestamp;
}

/** Global lookup: SHA-256 of an API key → the key. */
export interface ApiKeyHashTable {
  key_hash: Buffer;
  org_id: Int8;
  api_key_id: Int8;
}

/** Global lookup: inbox address → the inbox. */
export interface InboxAddressTable {
  email: string;
  org_id: Int8;
  inbox_id: Int8;
}

/** Global lookup: a domain name → the one organization that verified it (unverified names are not here). */
export interface DomainNameTable {
  domain: string;
  org_id: Int8;
  domain_id: Int8;
}

/** Global lookup: SHA-256 of a session token → the session. */
export interface SessionTokenTable {
  token_hash: Buffer;
  org_id: Int8;
  session_id: Int8;
}

/** Global lookup: the human's email of an agent sign-up → the sign-up. */
export interface AgentSignupEmailTable {
  human_email: string;
  org_id: Int8;
  agent_signup_id: Int8;
}

export interface IdempotencyKeyTable {
  org_id: Int8;
  key: string;
  /** The mutation that used the key first (sendMessage, replyToMessage, …). */
  operation: string;
  /** SHA-256 of the normalised input. */
  request_hash: Buffer;
  /** The payload's id: the sent message; null while the send is held for approval (draft_id). */
  message_id: Int8 | null;
  /** The draft an approval-bound caller's send was held as (db/migrations/…_draft_attachments.ts). */
  draft_id: Int8 | null;
  created_at: GeneratedTimestamp;
  expires_at: Timestamp;
}

export interface Database {
  organizations: OrganizationTable;
  users: UserTable;
  memberships: MembershipTable;
  sessions: SessionTable;
  pods: PodTable;
  domains: DomainTable;
  inboxes: InboxTable;
  threads: ThreadTable;
  thread_visibility: ThreadVisibilityTable;
  messages: MessageTable;
  attachments: AttachmentTable;
  drafts: DraftTable;
  draft_attachments: DraftAttachmentTable;
  webhooks: WebhookTable;
  webhook_deliveries: WebhookDeliveryTable;
  list_entries: ListEntryTable;
  api_keys: ApiKeyTable;
  events: EventTable;
  agent_signups: AgentSignupTable;
  api_key_hashes: ApiKeyHashTable;
  inbox_addresses: InboxAddressTable;
  domain_names: DomainNameTable;
  session_tokens: SessionTokenTable;
  agent_signup_emails: AgentSignupEmailTable;
  idempotency_keys: IdempotencyKeyTable;
}
