import type { GraphQLResolveInfo } from "graphql";
import { isTimeKey } from "../db/keyset.ts";
import type { MessageAuthenticationData } from "../db/types.ts";
import { type DraftAttachment, draftAttachmentContentsBase64 } from "../drafts/repository.ts";
import type { HeaderField } from "../mail/headers.ts";
import { extractedHtml, extractedText } from "../mail/reply.ts";
import {
  type Attachment,
  attachmentContentsBase64,
  attachmentsByIds,
  attachmentsOfMessages,
  listMessages,
  type MessageBody,
  type MessageColumn,
  type MessageSummary,
  messageAuthentications,
  messageBodies,
  messageHeaders,
  messageKey,
  messageSummariesByIds,
  SUMMARY_COLUMNS,
} from "../mail/repository.ts";
import { MAX_MESSAGES_PER_UPDATE, updateLabels, updateManyLabels } from "../mail/service.ts";
import type { ListFilter } from "../mail/visibility.ts";
import { builder, requires } from "./builder.ts";
import { type ConnectionArgs, connectionOf, keysetConnection } from "./connection.ts";
import { type Context, scopeOf } from "./context.ts";
import { downloadLinkField } from "./download-url.ts";
import { DRAFT_ATTACHMENT_ID_MARK, decodeId, optionalId } from "./global-id.ts";
import { InboxRef } from "./inbox.ts";
import { inputRule, LABEL_FILTER } from "./input-rules.ts";
import { contextLoader, inIdOrder, loadableNodeRef } from "./loaders.ts";
import { ascending, MessageFilterInput, messageFilterOf, SortOrderEnum } from "./message-filter.ts";
import { BODY_LIMIT, bodyField, budgetedBody, reserve } from "./response-budget.ts";
import { selectedFieldNames } from "./selection.ts";

export const MessageRef = loadableNodeRef<MessageSummary, string, string>("Message", {
  id: { resolve: (message) => message.id },
  load: async (ids, context) =>
    inIdOrder(ids, await messageSummariesByIds(context.services.db, scopeOf(context), ids), "Message"),
});

/**
 * The columns each Message field reads. A list reads only those of its selection (parsing arrays and
 * timestamps nobody asked for is most of a list's cost); a field missing here makes it read every
 * column, so a new field is never served from a column that was not read.
 */
const FIELD_COLUMNS: Readonly<Record<string, readonly MessageColumn[]>> = {
  __typename: [],
  id: [],
  inbox: [],
  thread: [],
  attachments: [],
  text: ["text_body_bytes"],
  html: ["html_body_bytes"],
  createdAt: [],
  messageId: ["message_id_header"],
  from: ["from_address"],
  to: ["to_addresses"],
  cc: ["cc_addresses"],
  bcc: ["bcc_addresses"],
  replyTo: ["reply_to_addresses"],
  subject: ["subject"],
  preview: ["preview"],
  labels: ["labels"],
  inReplyTo: ["in_reply_to"],
  references: ["reference_ids"],
  size: ["size_bytes"],
  fromAddress: ["from_address", "from_name"],
  toAddresses: ["to_addresses", "to_names"],
  ccAddresses: ["cc_addresses", "cc_names"],
  headers: [],
  extractedText: ["text_body_bytes"],
  extractedHtml: ["html_body_bytes"],
  rawUrl: [],
  authentication: [],
};

/** The columns a message list's selection (below `path`, e.g. edges.node) reads. */
export function messageColumns(info: GraphQLResolveInfo, path: readonly string[]): readonly MessageColumn[] {
  const fields = selectedFieldNames(info, path);
  let columns = columnsOfSelection.get(fields);
  if (!columns) {
    const read = new Set<MessageColumn>();
    for (const field of fields) {
      const wanted = FIELD_COLUMNS[field];
      if (!wanted) {
        read.clear();
        for (const column of SUMMARY_COLUMNS) read.add(column);
        break;
      }
      for (const column of wanted) read.add(column);
    }
    columns = [...read];
    columnsOfSelection.set(fields, columns);
  }
  return columns;
}

/** Per (memoized) selection: a list of 50 threads asks 50 times. */
const columnsOfSelection = new WeakMap<ReadonlySet<string>, readonly MessageColumn[]>();

/** The bodies of the whole response that fit its allowance, in one statement. */
const bodies = (context: Context) =>
  contextLoader<{ id: string; body: MessageBody }, string | null>(
    context,
    "messageBodies",
    async (wanted) => {
      const read = await messageBodies(context.services.db, scopeOf(context), wanted);
      return wanted.map(({ id, body }) => read.get(`${body}:${id}`) ?? null);
    },
    ({ id, body }) => `${body}:${id}`,
  );

const EmailAddressRef = builder.simpleObject("EmailAddress", {
  description: "A mailbox: an address and, when the message gave one, a display name.",
  fields: (t) => ({
    address: t.string({ description: "The address, e.g. ann@example.com." }),
    name: t.string({ nullable: true, description: 'The display name, e.g. "Ann Lee"; null without one.' }),
  }),
});

const MessageHeaderRef = builder.simpleObject("MessageHeader", {
  description: "One header field of a message.",
  fields: (t) => ({
    name: t.string({ description: "The field's name as written (e.g. Received, DKIM-Signature)." }),
    value: t.string({
      description: "Its value, unfolded, as received or sent (encoded words are not decoded).",
    }),
  }),
});

const AuthVerdictEnum = builder.enumType("AuthVerdict", {
  description: "The result of one authentication check, as RFC 8601 names it (docs/authentication.md).",
  values: {
    PASS: { description: "The check passed: the domain vouches for this message." },
    FAIL: { description: "The check failed: the domain says this message is not from it." },
    SOFTFAIL: { description: "SPF: the domain says the sending host is probably not its own." },
    NEUTRAL: { description: "The domain states nothing either way." },
    NONE: { description: "Nothing to check: no record published, or no signature." },
    TEMPERROR: { description: "DNS did not answer in time: the result is unknown, and may be known later." },
    PERMERROR: { description: "The domain's record is broken: the check cannot be done." },
    POLICY: {
      description: "A signature that verified but that local policy does not accept (e.g. a weak key).",
    },
  } as const,
});

const AuthCheckRef = builder.simpleObject("AuthCheck", {
  description: "One authentication check of a received message.",
  fields: (t) => ({
    result: t.field({ type: AuthVerdictEnum }),
    domain: t.string({
      nullable: true,
      description:
        "The domain checked: SPF's MAIL FROM (or HELO) domain, the DKIM or ARC signer, DMARC's From domain.",
    }),
    detail: t.string({
      nullable: true,
      description: "Why, in the checker's words (e.g. the policy applied).",
    }),
  }),
});

const MessageAuthenticationRef = builder.simpleObject("MessageAuthentication", {
  description:
    "Who really sent a message received from outside: SPF, DKIM, DMARC and ARC as checked on receipt. Act only " +
    "on `authenticated` mail.",
  fields: (t) => ({
    spf: t.field({ type: AuthCheckRef, description: "SPF for the connecting host, HELO and MAIL FROM." }),
    dkim: t.field({
      type: [AuthCheckRef],
      description: "One check per DKIM signature; empty when unsigned.",
    }),
    dmarc: t.field({ type: AuthCheckRef, description: "DMARC alignment and the From domain's policy." }),
    arc: t.field({
      type: AuthCheckRef,
      nullable: true,
      description: "The ARC chain of forwarders, null when the message carries none.",
    }),
    authenticated: t.boolean({
      description:
        "DMARC passed; or, for a From domain without a DMARC record, SPF or an aligned DKIM signature passed.",
    }),
  }),
});

/** Addresses and their names, which run in parallel (names are null for mail stored before they were kept). */
function mailboxesOf(addresses: readonly string[], names: readonly (string | null)[] | null) {
  return addresses.map((address, i) => ({ address, name: names?.[i] ?? null }));
}

/** A field derived from a body: read within the response's allowance like the body, then transformed. */
function extracted(body: "text" | "html", field: string, transform: (value: string) => string) {
  const read = budgetedBody(body, bodies, field);
  return async (message: MessageSummary, args: unknown, context: Context) => {
    const value = await read(message, args, context);
    return value === null ? null : transform(value);
  };
}

/**
 * A message's attachment, or a draft's (docs/sending.md, "Draft attachments"): one GraphQL type, read
 * and downloaded under the rules of whatever holds it. A message's attachment loads by its global id
 * (node/nodes); a draft's has an id of its own kind (`DraftAttachment:<id>`, builder.ts's
 * encodeGlobalID) that does not load by id: it is read through its draft (docs/schema.md).
 */
export type AttachmentSource = Attachment | DraftAttachment;

const ofDraft = (attachment: AttachmentSource): attachment is DraftAttachment => "draft_id" in attachment;

export const AttachmentRef = loadableNodeRef<AttachmentSource, string, string>("Attachment", {
  id: {
    resolve: (attachment) =>
      ofDraft(attachment) ? `${DRAFT_ATTACHMENT_ID_MARK}${attachment.id}` : attachment.id,
  },
  // Scope and hidden labels are the message's: an attachment is seen exactly when its message is.
  load: async (ids, context) =>
    inIdOrder(ids, await attachmentsByIds(context.services.db, scopeOf(context), ids), "Attachment"),
});

AttachmentRef.implement({
  description: "A file attached to a message, or to a draft (sent with it).",
  fields: (t) => ({
    filename: t.exposeString("filename", { nullable: true }),
    contentType: t.exposeString("content_type"),
    size: t.int({ resolve: (attachment) => attachment.size_bytes }),
    contentId: t.string({
      nullable: true,
      description: "The Content-ID an HTML body refers to it by (cid:…); null for a draft's attachment.",
      resolve: (attachment) => (ofDraft(attachment) ? null : attachment.content_id),
    }),
    disposition: t.string({
      nullable: true,
      description: "Content-Disposition as received or sent (attachment, inline); attachment for a draft's.",
      resolve: (attachment) => (ofDraft(attachment) ? "attachment" : attachment.disposition),
    }),
    contentBase64: t.string({
      nullable: true,
      description:
        "The attachment's bytes, base64-encoded. Fetched only when selected. Null, with a BAD_USER_INPUT " +
        "error on this field, when the response would carry more attachment content than one response " +
        "may (MAX_INLINE_ATTACHMENT_BYTES, 10 MiB by default): download it from `downloadUrl` instead, or " +
        "fetch fewer attachments per request.",
      resolve: async (attachment, _args, context) => {
        // Decided on the stored size, so refused content is never read from the database.
        reserve(context, "attachments", attachment.size_bytes, "contentBase64");
        if (ofDraft(attachment)) {
          return contextLoader<string, string>(context, "draftAttachmentContent", async (ids) => {
            const contents = await draftAttachmentContentsBase64(context.services.db, scopeOf(context), ids);
            return ids.map((id) => contents.get(id) ?? new Error("Attachment not found."));
          }).load(attachment.id);
        }
        const loader = contextLoader<string, string>(context, "attachmentContent", async (ids) => {
          const contents = await attachmentContentsBase64(context.services.db, scopeOf(context), ids);
          return ids.map((id) => contents.get(id) ?? new Error("Attachment not found."));
        });
        return loader.load(attachment.id);
      },
    }),
    downloadUrl: t.string(
      downloadLinkField(
        "the attachment's bytes, with its type and filename",
        (attachment: AttachmentSource) =>
          ofDraft(attachment)
            ? { kind: "draftAttachment", draftId: attachment.draft_id, attachmentId: attachment.id }
            : { kind: "attachment", messageId: attachment.message_id, attachmentId: attachment.id },
      ),
    ),
  }),
});

MessageRef.implement({
  description: "One email message, received or sent.",
  fields: (t) => ({
    inbox: t.field({ type: InboxRef, resolve: (message) => message.inbox_id }),
    messageId: t.exposeString("message_id_header", { description: "The RFC 5322 Message-ID header." }),
    from: t.exposeString("from_address"),
    to: t.exposeStringList("to_addresses"),
    cc: t.exposeStringList("cc_addresses"),
    bcc: t.exposeStringList("bcc_addresses"),
    replyTo: t.exposeStringList("reply_to_addresses"),
    subject: t.exposeString("subject", { nullable: true }),
    text: t.string(bodyField("text", bodies)),
    html: t.string(bodyField("html", bodies)),
    preview: t.exposeString("preview", { nullable: true }),
    labels: t.exposeStringList("labels"),
    inReplyTo: t.exposeString("in_reply_to", { nullable: true }),
    references: t.exposeStringList("reference_ids"),
    size: t.int({ description: "Bytes of the raw message.", resolve: (message) => message.size_bytes }),
    fromAddress: t.field({
      type: EmailAddressRef,
      description: "The sender, with its display name when it has one. `from` stays the bare address.",
      resolve: (message) => ({ address: message.from_address, name: message.from_name }),
    }),
    toAddresses: t.field({
      type: [EmailAddressRef],
      description: "The To recipients, with their display names.",
      resolve: (message) => mailboxesOf(message.to_addresses, message.to_names),
    }),
    ccAddresses: t.field({
      type: [EmailAddressRef],
      description: "The Cc recipients, with their display names.",
      resolve: (message) => mailboxesOf(message.cc_addresses, message.cc_names),
    }),
    headers: t.field({
      type: [MessageHeaderRef],
      description: "Every header field, in order, as received or sent (values unfolded).",
      resolve: async (message, _args, context) =>
        (
          await contextLoader<string, HeaderField[]>(context, "messageHeaders", async (ids) => {
            const byMessage = await messageHeaders(context.services.db, scopeOf(context), ids);
            return ids.map((id) => byMessage.get(id) ?? []);
          }).load(message.id)
        ).map(([name, value]) => ({ name, value })),
    }),
    extractedText: t.string({
      nullable: true,
      description:
        "The new text of a reply: what its author wrote, quoted history and signature removed (the whole text " +
        `when nothing is quoted). Null without a text body. ${BODY_LIMIT}`,
      resolve: extracted("text", "extractedText", extractedText),
    }),
    extractedHtml: t.string({
      nullable: true,
      description:
        "The new HTML of a reply, quoted history removed (the whole HTML when nothing is quoted). Null without an " +
        `HTML body. ${BODY_LIMIT}`,
      resolve: extracted("html", "extractedHtml", extractedHtml),
    }),
    attachments: t.field({
      type: [AttachmentRef],
      resolve: (message, _args, context) =>
        contextLoader<string, Attachment[]>(context, "attachments", async (ids) => {
          const byMessage = await attachmentsOfMessages(context.services.db, scopeOf(context), ids);
          return ids.map((id) => byMessage.get(id) ?? []);
        }).load(message.id),
    }),
    createdAt: t.field({ type: "DateTime", resolve: (message) => message.created_at }),
    authentication: t.field({
      type: MessageAuthenticationRef,
      nullable: true,
      description:
        "Who really sent it: the SPF, DKIM, DMARC and ARC verdicts checked when it was received from outside. " +
        "Null for mail sent from here or delivered between inboxes hosted here.",
      resolve: (message, _args, context) =>
        contextLoader<string, MessageAuthenticationData | null>(
          context,
          "messageAuthentications",
          async (ids) => {
            const byMessage = await messageAuthentications(context.services.db, scopeOf(context), ids);
            return ids.map((id) => byMessage.get(id) ?? null);
          },
        ).load(message.id),
    }),
    rawUrl: t.string(
      downloadLinkField("the raw RFC 5322 message (message/rfc822)", (message: MessageSummary) => ({
        kind: "raw",
        messageId: message.id,
      })),
    ),
  }),
});

/** One page of a message list in its order, reading only the columns its selection asks for. */
function messagePage(
  args: ConnectionArgs & { order?: "NEWEST_FIRST" | "OLDEST_FIRST" | null },
  context: Context,
  info: GraphQLResolveInfo,
  filter: ListFilter,
) {
  return keysetConnection(
    args,
    messageKey,
    isTimeKey,
    (page) =>
      listMessages(
        context.services.db,
        scopeOf(context),
        filter,
        page,
        messageColumns(info, ["edges", "node"]),
      ),
    { ascending: ascending(args.order) },
  );
}

builder.objectField(InboxRef, "messages", (t) =>
  t.connection(
    {
      type: MessageRef,
      ...requires("MESSAGE_READ"),
      description: "The inbox's messages the caller can see, newest first unless `order` says otherwise.",
      args: {
        labels: t.arg.stringList({
          description: "Only messages carrying every one of these labels.",
          ...LABEL_FILTER,
        }),
        filter: t.arg({ type: MessageFilterInput }),
        order: t.arg({ type: SortOrderEnum, defaultValue: "NEWEST_FIRST" }),
      },
      resolve: (inbox, args, context, info) =>
        messagePage(args, context, info, {
          inboxId: inbox.id,
          labels: args.labels ?? undefined,
          message: messageFilterOf(args.filter),
        }),
    },
    connectionOf(MessageRef),
  ),
);

builder.queryFields((t) => ({
  messages: t.connection(
    {
      type: MessageRef,
      ...requires("MESSAGE_READ"),
      description: "Messages the caller can see, newest first unless `order` says otherwise.",
      args: {
        inboxId: t.arg.id(),
        podId: t.arg.id(),
        labels: t.arg.stringList({ ...LABEL_FILTER }),
        filter: t.arg({ type: MessageFilterInput }),
        order: t.arg({ type: SortOrderEnum, defaultValue: "NEWEST_FIRST" }),
      },
      resolve: (_root, args, context, info) =>
        messagePage(args, context, info, {
          inboxId: optionalId(args.inboxId, "Inbox"),
          podId: optionalId(args.podId, "Pod"),
          labels: args.labels ?? undefined,
          message: messageFilterOf(args.filter),
        }),
    },
    connectionOf(MessageRef),
  ),
  message: t.field({
    type: MessageRef,
    ...requires("MESSAGE_READ"),
    args: { id: t.arg.id({ required: true }) },
    resolve: (_root, args) => decodeId(String(args.id), "Message"),
  }),
}));

const UpdateMessageInput = builder.inputType("UpdateMessageInput", {
  fields: (t) => ({
    id: t.id({ required: true }),
    addLabels: t.stringList(),
    removeLabels: t.stringList({ description: "Remove `unread` to mark a message read." }),
  }),
});

const UpdateMessagePayload = builder.simpleObject("UpdateMessagePayload", {
  fields: (t) => ({ message: t.field({ type: MessageRef }) }),
});

builder.mutationField("updateMessage", (t) =>
  t.field({
    type: UpdateMessagePayload,
    ...requires("MESSAGE_UPDATE"),
    description:
      "Adds and removes labels. The system labels `received`, `sent` and `unauthenticated` cannot be changed.",
    args: { input: t.arg({ type: UpdateMessageInput, required: true }) },
    resolve: async (_root, { input }, context) => ({
      message: await updateLabels(
        context.services,
        scopeOf(context),
        decodeId(String(input.id), "Message"),
        input.addLabels,
        input.removeLabels,
      ),
    }),
  }),
);

const UpdateMessagesInput = builder.inputType("UpdateMessagesInput", {
  fields: (t) => ({
    ids: t.idList({
      required: true,
      description: `1 to ${MAX_MESSAGES_PER_UPDATE} messages. Any the caller cannot see: NOT_FOUND, and none changes.`,
      ...inputRule({ maxItems: MAX_MESSAGES_PER_UPDATE }),
    }),
    addLabels: t.stringList(),
    removeLabels: t.stringList({ description: "Remove `unread` to mark messages read." }),
  }),
});

const UpdateMessagesPayload = builder.simpleObject("UpdateMessagesPayload", {
  fields: (t) => ({ messages: t.field({ type: [MessageRef], description: "In the order of ids." }) }),
});

builder.mutationField("updateMessages", (t) =>
  t.field({
    type: UpdateMessagesPayload,
    ...requires("MESSAGE_UPDATE"),
    description:
      "updateMessage on many messages at once, all or nothing: the same labels added and removed on each.",
    args: { input: t.arg({ type: UpdateMessagesInput, required: true }) },
    resolve: async (_root, { input }, context) => ({
      messages: await updateManyLabels(
        context.services,
        scopeOf(context),
        input.ids.map((id) => decodeId(String(id), "Message")),
        input.addLabels,
        input.removeLabels,
      ),
    }),
  }),
);
