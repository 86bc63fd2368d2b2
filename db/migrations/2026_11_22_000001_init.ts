// The initial data model. Frozen once landed: later changes go in new migrations.
//
// Tenant isolation is structural (docs/architecture.md, "Past one database"): every tenant
// table carries `org_id bigint NOT NULL`, its primary key is `(org_id, id)`, every foreign key
// between tenant tables includes `org_id`, and every index starts with `org_id`. A row can
// therefore never point at another organization's row, and the schema can be distributed by
// `org_id` (Citus) unchanged. The only tables not keyed by organization are `organizations`,
// `users` and the five global lookups (`api_key_hashes`, `inbox_addresses`, `domain_names`,
// `session_tokens`, `agent_signup_emails`), which map a globally unique value to its tenant row.
//
// Where a table denormalizes `pod_id`/`inbox_id` (threads, messages, drafts, ...), a composite
// foreign key ties the copy to its parent, so scope filters on those columns cannot be fooled
// by an inconsistent row.
//
// Enumerations are `text` with CHECK constraints: easier to evolve than PostgreSQL enums.
// `updated_at` columns are set by the application (no triggers).
// Runs on PostgreSQL 15+ (uses NULLS NOT DISTINCT and ON DELETE SET NULL (column)).
import { type Kysely, sql } from "kysely";

export async function up(db: Kysely<unknown>): Promise<void> {
  // btree_gin lets one GIN index lead with org_id and then cover the labels array.
  // It is a trusted extension, so the database owner may create it without superuser.
  await sql`CREATE EXTENSION IF NOT EXISTS btree_gin`.execute(db);

  await sql`
    CREATE TABLE organizations (
      id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      name text NOT NULL,
      status text NOT NULL DEFAULT 'ACTIVE'
        CONSTRAINT organizations_status_check CHECK (status IN ('ACTIVE', 'AGENT_UNVERIFIED', 'AGENT_VERIFIED')),
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now()
    )
  `.execute(db);

  // People who sign in. Global, not a tenant table: memberships tie a user to organizations.
  await sql`
    CREATE TABLE users (
      id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      email text NOT NULL CONSTRAINT users_email_key UNIQUE
        CONSTRAINT users_email_lower_check CHECK (email = lower(email)),
      -- argon2id encoded hash; NULL means password sign-in is disabled for this user.
      password_hash text,
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now()
    )
  `.execute(db);

  await sql`
    CREATE TABLE memberships (
      org_id bigint NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
      user_id bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
      role text NOT NULL CONSTRAINT memberships_role_check CHECK (role IN ('ADMIN', 'MEMBER')),
      created_at timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (org_id, user_id)
    )
  `.execute(db);
  // The one index that does not start with org_id, on purpose: at login we know the user and
  // not yet the organization. Under Citus this becomes a query over all shards, which is
  // acceptable for a login; it also serves the ON DELETE CASCADE from users.
  await sql`CREATE INDEX memberships_user_id_org_id_idx ON memberships (user_id, org_id)`.execute(db);

  await sql`
    CREATE TABLE sessions (
      org_id bigint NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
      id bigint GENERATED ALWAYS AS IDENTITY,
      user_id bigint NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now(),
      expires_at timestamptz NOT NULL,
      last_seen_at timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (org_id, id),
      FOREIGN KEY (org_id, user_id) REFERENCES memberships (org_id, user_id) ON DELETE CASCADE
    )
  `.execute(db);
  await sql`CREATE INDEX sessions_org_id_user_id_idx ON sessions (org_id, user_id)`.execute(db);

  await sql`
    CREATE TABLE pods (
      org_id bigint NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
      id bigint GENERATED ALWAYS AS IDENTITY,
      name text NOT NULL,
      -- Caller-chosen idempotency/correlation key; several pods may leave it NULL.
      client_id text,
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (org_id, id),
      CONSTRAINT pods_org_id_client_id_key UNIQUE (org_id, client_id)
    )
  `.execute(db);

  await sql`
    CREATE TABLE domains (
      org_id bigint NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
      id bigint GENERATED ALWAYS AS IDENTITY,
      -- NULL: shared by every pod of the organization (read-only for pod-scoped keys).
      pod_id bigint,
      domain text NOT NULL CONSTRAINT domains_domain_lower_check CHECK (domain = lower(domain)),
      status text NOT NULL DEFAULT 'PENDING'
        CONSTRAINT domains_status_check CHECK (status IN ('PENDING', 'VERIFIED', 'FAILED')),
      dkim_selector text NOT NULL,
      -- PEM. Kept because outbound mail must be signed with it; never exposed through the API.
      dkim_private_key text NOT NULL,
      dkim_public_key text NOT NULL,
      -- Why the last verification failed, for display next to the DNS records.
      last_error text,
      verified_at timestamptz,
      last_checked_at timestamptz,
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (org_id, id),
      FOREIGN KEY (org_id, pod_id) REFERENCES pods (org_id, id) ON DELETE CASCADE
    )
  `.execute(db);
  await sql`CREATE INDEX domains_org_id_pod_id_id_idx ON domains (org_id, pod_id, id)`.execute(db);

  await sql`
    CREATE TABLE inboxes (
      org_id bigint NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
      id bigint GENERATED ALWAYS AS IDENTITY,
      pod_id bigint NOT NULL,
      username text NOT NULL,
      domain text NOT NULL,
      email text NOT NULL,
      display_name text,
      client_id text,
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (org_id, id),
      FOREIGN KEY (org_id, pod_id) REFERENCES pods (org_id, id) ON DELETE CASCADE,
      CONSTRAINT inboxes_email_check CHECK (
        email = lower(email) AND username = lower(username) AND domain = lower(domain)
        AND email = username || '@' || domain
      ),
      CONSTRAINT inboxes_org_id_client_id_key UNIQUE (org_id, client_id),
      CONSTRAINT inboxes_org_id_email_key UNIQUE (org_id, email),
      -- Lists a pod's inboxes (keyset on id) and is the target of the (org_id, pod_id, inbox_id)
      -- foreign keys that keep denormalized pod_id columns consistent with the inbox.
      CONSTRAINT inboxes_org_id_pod_id_id_key UNIQUE (org_id, pod_id, id)
    )
  `.execute(db);

  await sql`
    CREATE TABLE threads (
      org_id bigint NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
      id bigint GENERATED ALWAYS AS IDENTITY,
      pod_id bigint NOT NULL,
      inbox_id bigint NOT NULL,
      subject text,
      created_at timestamptz NOT NULL DEFAULT now(),
      -- Bumped by every new message; list order. Counts, preview, labels and senders are not
      -- stored: they depend on which labels the caller may see, so they are computed per query.
      last_message_at timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (org_id, id),
      FOREIGN KEY (org_id, pod_id, inbox_id) REFERENCES inboxes (org_id, pod_id, id) ON DELETE CASCADE,
      -- Target of messages' (org_id, inbox_id, thread_id) foreign key: a message and its thread
      -- always share an inbox.
      CONSTRAINT threads_org_id_inbox_id_id_key UNIQUE (org_id, inbox_id, id)
    )
  `.execute(db);
  await sql`
    CREATE INDEX threads_org_id_inbox_id_last_message_at_id_idx
      ON threads (org_id, inbox_id, last_message_at DESC, id DESC)
  `.execute(db);
  await sql`
    CREATE INDEX threads_org_id_pod_id_last_message_at_id_idx
      ON threads (org_id, pod_id, last_message_at DESC, id DESC)
  `.execute(db);
  await sql`
    CREATE INDEX threads_org_id_last_message_at_id_idx ON threads (org_id, last_message_at DESC, id DESC)
  `.execute(db);

  await sql`
    CREATE TABLE messages (
      org_id bigint NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
      id bigint GENERATED ALWAYS AS IDENTITY,
      pod_id bigint NOT NULL,
      inbox_id bigint NOT NULL,
      thread_id bigint NOT NULL,
      -- RFC 5322 Message-ID (generated when an inbound message has none). Bounded so that it
      -- always fits in a B-tree entry.
      message_id_header text NOT NULL
        CONSTRAINT messages_message_id_header_length_check CHECK (octet_length(message_id_header) BETWEEN 1 AND 998),
      from_address text NOT NULL,
      to_addresses text[] NOT NULL DEFAULT '{}',
      cc_addresses text[] NOT NULL DEFAULT '{}',
      bcc_addresses text[] NOT NULL DEFAULT '{}',
      reply_to_addresses text[] NOT NULL DEFAULT '{}',
      subject text,
      text_body text,
      html_body text,
      -- First ~200 characters of the text, for thread lists.
      preview text,
      labels text[] NOT NULL DEFAULT '{}',
      in_reply_to text,
      reference_ids text[] NOT NULL DEFAULT '{}',
      direction text NOT NULL CONSTRAINT messages_direction_check CHECK (direction IN ('INBOUND', 'OUTBOUND')),
      -- Outbound only; NULL for inbound mail.
      delivery_status text
        CONSTRAINT messages_delivery_status_check CHECK (delivery_status IN ('QUEUED', 'DELIVERED', 'BOUNCED')),
      delivery_error text,
      delivered_at timestamptz,
      size_bytes integer NOT NULL DEFAULT 0 CONSTRAINT messages_size_bytes_check CHECK (size_bytes >= 0),
      -- The message as received or as sent; NULL for outbound mail not composed yet.
      raw_mime bytea,
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (org_id, id),
      FOREIGN KEY (org_id, pod_id, inbox_id) REFERENCES inboxes (org_id, pod_id, id) ON DELETE CASCADE,
      FOREIGN KEY (org_id, inbox_id, thread_id) REFERENCES threads (org_id, inbox_id, id) ON DELETE CASCADE,
      CONSTRAINT messages_outbound_delivery_check CHECK (direction = 'OUTBOUND' OR delivery_status IS NULL),
      -- Lists an inbox's messages newest first (backward scan) and is the target of drafts'
      -- in-reply-to foreign key (a draft replies to a message of its own inbox).
      CONSTRAINT messages_org_id_inbox_id_id_key UNIQUE (org_id, inbox_id, id),
      -- Deduplicates: an SMTP client that retries after a lost "250" delivers the same
      -- Message-ID again; the insert conflicts and the retry is acknowledged without a second
      -- copy. Per inbox (the same mail to two inboxes is two messages) and per direction (mail
      -- an inbox sends to itself is stored once as sent, once as received). Two different mails
      -- that share a Message-ID in one inbox are collapsed, which is what mail clients do too.
      -- Its (org_id, inbox_id, message_id_header) prefix also resolves In-Reply-To/References
      -- when threading.
      CONSTRAINT messages_org_id_inbox_id_message_id_header_direction_key
        UNIQUE (org_id, inbox_id, message_id_header, direction)
    )
  `.execute(db);
  await sql`CREATE INDEX messages_org_id_pod_id_id_idx ON messages (org_id, pod_id, id)`.execute(db);
  await sql`
    CREATE INDEX messages_org_id_thread_id_created_at_id_idx ON messages (org_id, thread_id, created_at, id)
  `.execute(db);
  await sql`CREATE INDEX messages_org_id_labels_idx ON messages USING gin (org_id, labels)`.execute(db);

  await sql`
    CREATE TABLE attachments (
      org_id bigint NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
      id bigint GENERATED ALWAYS AS IDENTITY,
      message_id bigint NOT NULL,
      filename text,
      content_type text NOT NULL,
      size_bytes integer NOT NULL CONSTRAINT attachments_size_bytes_check CHECK (size_bytes >= 0),
      -- Content-ID, for inline parts referenced from the HTML as cid:...
      content_id text,
      -- Content-Disposition as received ('attachment', 'inline' or NULL).
      disposition text,
      content bytea NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (org_id, id),
      FOREIGN KEY (org_id, message_id) REFERENCES messages (org_id, id) ON DELETE CASCADE
    )
  `.execute(db);
  await sql`
    CREATE INDEX attachments_org_id_message_id_id_idx ON attachments (org_id, message_id, id)
  `.execute(db);

  await sql`
    CREATE TABLE drafts (
      org_id bigint NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
      id bigint GENERATED ALWAYS AS IDENTITY,
      pod_id bigint NOT NULL,
      inbox_id bigint NOT NULL,
      to_addresses text[] NOT NULL DEFAULT '{}',
      cc_addresses text[] NOT NULL DEFAULT '{}',
      bcc_addresses text[] NOT NULL DEFAULT '{}',
      subject text,
      text_body text,
      html_body text,
      in_reply_to_message_id bigint,
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (org_id, id),
      FOREIGN KEY (org_id, pod_id, inbox_id) REFERENCES inboxes (org_id, pod_id, id) ON DELETE CASCADE,
      -- Deleting the replied-to message keeps the draft and clears only the reference
      -- (a plain SET NULL would also null org_id and inbox_id).
      FOREIGN KEY (org_id, inbox_id, in_reply_to_message_id) REFERENCES messages (org_id, inbox_id, id)
        ON DELETE SET NULL (in_reply_to_message_id)
    )
  `.execute(db);
  await sql`CREATE INDEX drafts_org_id_inbox_id_id_idx ON drafts (org_id, inbox_id, id)`.execute(db);
  await sql`CREATE INDEX drafts_org_id_pod_id_id_idx ON drafts (org_id, pod_id, id)`.execute(db);
  await sql`
    CREATE INDEX drafts_org_id_in_reply_to_message_id_idx ON drafts (org_id, in_reply_to_message_id)
      WHERE in_reply_to_message_id IS NOT NULL
  `.execute(db);

  await sql`
    CREATE TABLE webhooks (
      org_id bigint NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
      id bigint GENERATED ALWAYS AS IDENTITY,
      -- Owner: set when created by a pod- (or inbox-) scoped caller; NULL = organization-wide.
      pod_id bigint,
      inbox_id bigint,
      url text NOT NULL,
      event_types text[] NOT NULL CONSTRAINT webhooks_event_types_check CHECK (
        cardinality(event_types) > 0
        AND event_types <@ ARRAY['MESSAGE_RECEIVED', 'MESSAGE_SENT', 'MESSAGE_DELIVERED', 'MESSAGE_BOUNCED',
          'MESSAGE_REJECTED', 'DOMAIN_VERIFIED']::text[]
      ),
      -- Delivery filters; NULL = no filter. Ids of rows that may be deleted later, so no FK.
      pod_ids bigint[],
      inbox_ids bigint[],
      -- The signing secret is derived from a server key and this salt: nothing stored here
      -- can sign a webhook on its own.
      secret_salt bytea NOT NULL,
      enabled boolean NOT NULL DEFAULT true,
      disabled_reason text,
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (org_id, id),
      FOREIGN KEY (org_id, pod_id) REFERENCES pods (org_id, id) ON DELETE CASCADE,
      FOREIGN KEY (org_id, inbox_id) REFERENCES inboxes (org_id, id) ON DELETE CASCADE,
      -- Checked only when both are set (MATCH SIMPLE): the inbox belongs to the pod.
      FOREIGN KEY (org_id, pod_id, inbox_id) REFERENCES inboxes (org_id, pod_id, id) ON DELETE CASCADE,
      CONSTRAINT webhooks_inbox_needs_pod_check CHECK (inbox_id IS NULL OR pod_id IS NOT NULL)
    )
  `.execute(db);
  await sql`CREATE INDEX webhooks_org_id_pod_id_id_idx ON webhooks (org_id, pod_id, id)`.execute(db);
  await sql`
    CREATE INDEX webhooks_org_id_inbox_id_id_idx ON webhooks (org_id, inbox_id, id) WHERE inbox_id IS NOT NULL
  `.execute(db);

  await sql`
    CREATE TABLE events (
      org_id bigint NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
      -- Increasing: the replay cursor of subscriptions and the order of webhook deliveries.
      id bigint GENERATED ALWAYS AS IDENTITY,
      type text NOT NULL CONSTRAINT events_type_check CHECK (
        type IN ('MESSAGE_RECEIVED', 'MESSAGE_SENT', 'MESSAGE_DELIVERED', 'MESSAGE_BOUNCED', 'MESSAGE_REJECTED',
          'DOMAIN_VERIFIED')
      ),
      -- No foreign keys on purpose: an event outlives the rows it mentions.
      pod_id bigint,
      inbox_id bigint,
      thread_id bigint,
      message_id bigint,
      domain_id bigint,
      payload jsonb NOT NULL DEFAULT '{}',
      created_at timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (org_id, id)
    )
  `.execute(db);
  await sql`CREATE INDEX events_org_id_inbox_id_id_idx ON events (org_id, inbox_id, id)`.execute(db);
  await sql`CREATE INDEX events_org_id_pod_id_id_idx ON events (org_id, pod_id, id)`.execute(db);
  await sql`CREATE INDEX events_org_id_type_created_at_idx ON events (org_id, type, created_at)`.execute(db);

  await sql`
    CREATE TABLE webhook_deliveries (
      org_id bigint NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
      id bigint GENERATED ALWAYS AS IDENTITY,
      webhook_id bigint NOT NULL,
      event_id bigint NOT NULL,
      attempts integer NOT NULL DEFAULT 0 CONSTRAINT webhook_deliveries_attempts_check CHECK (attempts >= 0),
      status text NOT NULL DEFAULT 'PENDING'
        CONSTRAINT webhook_deliveries_status_check CHECK (status IN ('PENDING', 'SUCCEEDED', 'FAILED')),
      last_status_code integer,
      last_error text,
      next_attempt_at timestamptz,
      delivered_at timestamptz,
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (org_id, id),
      FOREIGN KEY (org_id, webhook_id) REFERENCES webhooks (org_id, id) ON DELETE CASCADE,
      -- Pruning old events prunes their delivery records.
      FOREIGN KEY (org_id, event_id) REFERENCES events (org_id, id) ON DELETE CASCADE,
      -- One delivery per (webhook, event): enqueueing twice is a no-op.
      CONSTRAINT webhook_deliveries_org_id_webhook_id_event_id_key UNIQUE (org_id, webhook_id, event_id)
    )
  `.execute(db);
  await sql`
    CREATE INDEX webhook_deliveries_org_id_webhook_id_id_idx ON webhook_deliveries (org_id, webhook_id, id DESC)
  `.execute(db);
  await sql`
    CREATE INDEX webhook_deliveries_org_id_event_id_idx ON webhook_deliveries (org_id, event_id)
  `.execute(db);

  await sql`
    CREATE TABLE list_entries (
      org_id bigint NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
      id bigint GENERATED ALWAYS AS IDENTITY,
      -- Both NULL: organization-wide; pod_id only: the pod; both: one inbox.
      pod_id bigint,
      inbox_id bigint,
      direction text NOT NULL CONSTRAINT list_entries_direction_check CHECK (direction IN ('SEND', 'RECEIVE')),
      type text NOT NULL CONSTRAINT list_entries_type_check CHECK (type IN ('ALLOW', 'BLOCK')),
      -- An email address or a domain, lower-case.
      entry text NOT NULL CONSTRAINT list_entries_entry_check CHECK (entry = lower(entry) AND entry <> ''),
      created_at timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (org_id, id),
      FOREIGN KEY (org_id, pod_id) REFERENCES pods (org_id, id) ON DELETE CASCADE,
      FOREIGN KEY (org_id, inbox_id) REFERENCES inboxes (org_id, id) ON DELETE CASCADE,
      FOREIGN KEY (org_id, pod_id, inbox_id) REFERENCES inboxes (org_id, pod_id, id) ON DELETE CASCADE,
      CONSTRAINT list_entries_inbox_needs_pod_check CHECK (inbox_id IS NULL OR pod_id IS NOT NULL),
      CONSTRAINT list_entries_unique_entry_key
        UNIQUE NULLS NOT DISTINCT (org_id, pod_id, inbox_id, direction, type, entry)
    )
  `.execute(db);
  await sql`
    CREATE INDEX list_entries_org_id_direction_type_id_idx ON list_entries (org_id, direction, type, id)
  `.execute(db);
  // The hot path: is this sender/recipient (address or domain) listed anywhere that applies?
  await sql`
    CREATE INDEX list_entries_org_id_direction_type_entry_idx ON list_entries (org_id, direction, type, entry)
  `.execute(db);
  await sql`CREATE INDEX list_entries_org_id_pod_id_id_idx ON list_entries (org_id, pod_id, id)`.execute(db);
  await sql`
    CREATE INDEX list_entries_org_id_inbox_id_id_idx ON list_entries (org_id, inbox_id, id)
      WHERE inbox_id IS NOT NULL
  `.execute(db);

  await sql`
    CREATE TABLE api_keys (
      org_id bigint NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
      id bigint GENERATED ALWAYS AS IDENTITY,
      name text NOT NULL,
      -- The 8 characters after "mr_", for display. The hash lives only in api_key_hashes.
      prefix text NOT NULL CONSTRAINT api_keys_prefix_check CHECK (length(prefix) = 8),
      scope text NOT NULL CONSTRAINT api_keys_scope_check CHECK (scope IN ('ORGANIZATION', 'POD', 'INBOX')),
      pod_id bigint,
      inbox_id bigint,
      -- NULL: full access within the scope's ceiling; otherwise the granted flags.
      permissions text[] CONSTRAINT api_keys_permissions_check CHECK (
        permissions <@ ARRAY['inbox_read', 'inbox_create', 'inbox_update', 'inbox_delete', 'thread_read',
          'thread_delete', 'message_read', 'message_send', 'message_update', 'label_spam_read',
          'label_blocked_read', 'label_trash_read', 'draft_read', 'draft_create', 'draft_update',
          'draft_delete', 'draft_send', 'webhook_read', 'webhook_create', 'webhook_update', 'webhook_delete',
          'domain_read', 'domain_create', 'domain_update', 'domain_delete', 'list_entry_read',
          'list_entry_create', 'list_entry_delete', 'metrics_read', 'api_key_read', 'api_key_create',
          'api_key_delete', 'pod_read', 'pod_create', 'pod_delete']::text[]
      ),
      created_by_api_key_id bigint,
      created_by_user_id bigint,
      created_at timestamptz NOT NULL DEFAULT now(),
      last_used_at timestamptz,
      expires_at timestamptz,
      PRIMARY KEY (org_id, id),
      CONSTRAINT api_keys_scope_target_check CHECK (
        (scope = 'ORGANIZATION' AND pod_id IS NULL AND inbox_id IS NULL)
        OR (scope = 'POD' AND pod_id IS NOT NULL AND inbox_id IS NULL)
        OR (scope = 'INBOX' AND pod_id IS NOT NULL AND inbox_id IS NOT NULL)
      ),
      -- A key dies with its pod or inbox.
      FOREIGN KEY (org_id, pod_id) REFERENCES pods (org_id, id) ON DELETE CASCADE,
      FOREIGN KEY (org_id, pod_id, inbox_id) REFERENCES inboxes (org_id, pod_id, id) ON DELETE CASCADE,
      -- Provenance only: a key outlives the key or person that created it.
      FOREIGN KEY (org_id, created_by_api_key_id) REFERENCES api_keys (org_id, id)
        ON DELETE SET NULL (created_by_api_key_id),
      FOREIGN KEY (org_id, created_by_user_id) REFERENCES memberships (org_id, user_id)
        ON DELETE SET NULL (created_by_user_id)
    )
  `.execute(db);
  await sql`CREATE INDEX api_keys_org_id_pod_id_id_idx ON api_keys (org_id, pod_id, id)`.execute(db);
  await sql`
    CREATE INDEX api_keys_org_id_inbox_id_id_idx ON api_keys (org_id, inbox_id, id) WHERE inbox_id IS NOT NULL
  `.execute(db);
  await sql`
    CREATE INDEX api_keys_org_id_created_by_api_key_id_idx ON api_keys (org_id, created_by_api_key_id)
      WHERE created_by_api_key_id IS NOT NULL
  `.execute(db);
  await sql`
    CREATE INDEX api_keys_org_id_created_by_user_id_idx ON api_keys (org_id, created_by_user_id)
      WHERE created_by_user_id IS NOT NULL
  `.execute(db);

  await sql`
    CREATE TABLE agent_signups (
      org_id bigint NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
      id bigint GENERATED ALWAYS AS IDENTITY,
      -- Also the unverified organization's send allow-list (no separate table).
      human_email text NOT NULL CONSTRAINT agent_signups_human_email_lower_check CHECK (human_email = lower(human_email)),
      username text NOT NULL,
      inbox_id bigint,
      -- The current key; a repeated sign-up rotates it.
      api_key_id bigint,
      -- argon2 hash of the 6-digit code.
      otp_hash text,
      otp_expires_at timestamptz,
      otp_attempts integer NOT NULL DEFAULT 0 CONSTRAINT agent_signups_otp_attempts_check CHECK (otp_attempts >= 0),
      verified_at timestamptz,
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (org_id, id),
      -- A sign-up creates its own organization: one per organization.
      CONSTRAINT agent_signups_org_id_key UNIQUE (org_id),
      FOREIGN KEY (org_id, inbox_id) REFERENCES inboxes (org_id, id) ON DELETE SET NULL (inbox_id),
      FOREIGN KEY (org_id, api_key_id) REFERENCES api_keys (org_id, id) ON DELETE SET NULL (api_key_id)
    )
  `.execute(db);
  await sql`
    CREATE INDEX agent_signups_org_id_inbox_id_idx ON agent_signups (org_id, inbox_id) WHERE inbox_id IS NOT NULL
  `.execute(db);
  await sql`
    CREATE INDEX agent_signups_org_id_api_key_id_idx ON agent_signups (org_id, api_key_id)
      WHERE api_key_id IS NOT NULL
  `.execute(db);

  // Global lookups: a globally unique value → its tenant row. Small, keyed by the value (Citus
  // reference tables). The composite foreign key removes the lookup with its row; the unique
  // (org_id, x_id) index serves that cascade and the reverse lookup.
  await sql`
    CREATE TABLE api_key_hashes (
      -- SHA-256 of the whole key text.
      key_hash bytea PRIMARY KEY CONSTRAINT api_key_hashes_key_hash_check CHECK (octet_length(key_hash) = 32),
      org_id bigint NOT NULL,
      api_key_id bigint NOT NULL,
      CONSTRAINT api_key_hashes_org_id_api_key_id_key UNIQUE (org_id, api_key_id),
      FOREIGN KEY (org_id, api_key_id) REFERENCES api_keys (org_id, id) ON DELETE CASCADE
    )
  `.execute(db);

  await sql`
    CREATE TABLE inbox_addresses (
      email text PRIMARY KEY CONSTRAINT inbox_addresses_email_lower_check CHECK (email = lower(email)),
      org_id bigint NOT NULL,
      inbox_id bigint NOT NULL,
      CONSTRAINT inbox_addresses_org_id_inbox_id_key UNIQUE (org_id, inbox_id),
      FOREIGN KEY (org_id, inbox_id) REFERENCES inboxes (org_id, id) ON DELETE CASCADE
    )
  `.execute(db);

  await sql`
    CREATE TABLE domain_names (
      domain text PRIMARY KEY CONSTRAINT domain_names_domain_lower_check CHECK (domain = lower(domain)),
      org_id bigint NOT NULL,
      domain_id bigint NOT NULL,
      CONSTRAINT domain_names_org_id_domain_id_key UNIQUE (org_id, domain_id),
      FOREIGN KEY (org_id, domain_id) REFERENCES domains (org_id, id) ON DELETE CASCADE
    )
  `.execute(db);

  await sql`
    CREATE TABLE session_tokens (
      -- SHA-256 of the cookie's token.
      token_hash bytea PRIMARY KEY CONSTRAINT session_tokens_token_hash_check CHECK (octet_length(token_hash) = 32),
      org_id bigint NOT NULL,
      session_id bigint NOT NULL,
      CONSTRAINT session_tokens_org_id_session_id_key UNIQUE (org_id, session_id),
      FOREIGN KEY (org_id, session_id) REFERENCES sessions (org_id, id) ON DELETE CASCADE
    )
  `.execute(db);

  await sql`
    CREATE TABLE agent_signup_emails (
      human_email text PRIMARY KEY CONSTRAINT agent_signup_emails_human_email_lower_check CHECK (
        human_email = lower(human_email)
      ),
      org_id bigint NOT NULL,
      agent_signup_id bigint NOT NULL,
      CONSTRAINT agent_signup_emails_org_id_agent_signup_id_key UNIQUE (org_id, agent_signup_id),
      FOREIGN KEY (org_id, agent_signup_id) REFERENCES agent_signups (org_id, id) ON DELETE CASCADE
    )
  `.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  for (const table of [
    "agent_signup_emails",
    "session_tokens",
    "domain_names",
    "inbox_addresses",
    "api_key_hashes",
    "agent_signups",
    "api_keys",
    "list_entries",
    "webhook_deliveries",
    "events",
    "webhooks",
    "drafts",
    "attachments",
    "messages",
    "threads",
    "inboxes",
    "domains",
    "pods",
    "sessions",
    "memberships",
    "users",
    "organizations",
  ]) {
    await sql`DROP TABLE IF EXISTS ${sql.table(table)}`.execute(db);
  }
  // Without CASCADE: if something outside this migration still uses it, fail instead of
  // dropping that too.
  await sql`DROP EXTENSION IF EXISTS btree_gin`.execute(db);
}
