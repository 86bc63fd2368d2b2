import type { InputFieldBuilder } from "@pothos/core";
import {
  attachmentsOfDrafts,
  type DraftAttachment,
  type DraftSummary,
  draftBodies,
  draftSummariesByIds,
  listDrafts,
} from "../drafts/repository.ts";
import { createDraft, removeDraft, updateDraft } from "../drafts/service.ts";
import { type BuilderTypes, builder, requires } from "./builder.ts";
import { connectionOf, isIdKey, keysetConnection } from "./connection.ts";
import { type Context, requiresApprovalOf, scopeOf } from "./context.ts";
import { DeleteInputRef, DeletePayloadRef } from "./delete.ts";
import { decodeId, optionalId } from "./global-id.ts";
import { InboxRef } from "./inbox.ts";
import { MAIL_BODY } from "./input-rules.ts";
import { contextLoader, inIdOrder, loadableNodeRef } from "./loaders.ts";
import { AttachmentRef, MessageRef } from "./message.ts";
import { type BodyColumn, bodyField } from "./response-budget.ts";

export const DraftRef = loadableNodeRef<DraftSummary, string, string>("Draft", {
  id: { resolve: (draft) => draft.id },
  load: async (ids, context) =>
    inIdOrder(ids, await draftSummariesByIds(context.services.db, scopeOf(context), ids), "Draft"),
});

/** The bodies of the whole response that fit its allowance, in one statement. */
const bodies = (context: Context) =>
  contextLoader<{ id: string; body: BodyColumn }, string | null>(
    context,
    "draftBodies",
    async (wanted) => {
      const read = await draftBodies(context.services.db, scopeOf(context), wanted);
      return wanted.map(({ id, body }) => read.get(`${body}:${id}`) ?? null);
    },
    ({ id, body }) => `${body}:${id}`,
  );

const DraftSendStatus = builder.enumType("DraftSendStatus", {
  description: "Where a draft stands in its sending (docs/sending.md).",
  values: {
    DRAFT: { description: "Being written; not scheduled." },
    SCHEDULED: { description: "To be sent at sendAt." },
    SENDING: { description: "Its scheduled send is under way." },
    SENT: { description: "Sent by its schedule; the message is in the inbox, labelled sent." },
    FAILED: { description: "Its scheduled send was refused; failureReason says why." },
    PENDING_APPROVAL: {
      description: "Waiting for a person (or a key that is not approval-bound) to approve it.",
    },
  } as const,
});

DraftRef.implement({
  description: "An unsent message being composed in an inbox.",
  fields: (t) => ({
    inbox: t.field({ type: InboxRef, resolve: (draft) => draft.inbox_id }),
    to: t.exposeStringList("to_addresses"),
    cc: t.exposeStringList("cc_addresses"),
    bcc: t.exposeStringList("bcc_addresses"),
    subject: t.exposeString("subject", { nullable: true }),
    text: t.string(bodyField("text", bodies)),
    html: t.string(bodyField("html", bodies)),
    inReplyTo: t.field({
      type: MessageRef,
      ...requires("MESSAGE_READ"),
      description:
        "The message this draft replies to; null when there is none, or when it is deleted or hidden from the caller.",
      resolve: (draft) => draft.in_reply_to_visible_id,
    }),
    forwardOf: t.field({
      type: MessageRef,
      ...requires("MESSAGE_READ"),
      description:
        "The message this draft forwards (attached whole when it is sent); null when there is none, or when it is deleted or hidden from the caller.",
      resolve: (draft) => draft.forward_of_visible_id,
    }),
    replyAll: t.exposeBoolean("reply_all", {
      description:
        "Sent also to everyone else the replied-to message was addressed to (never to this inbox itself).",
    }),
    sendAt: t.field({
      type: "DateTime",
      nullable: true,
      description: "When the draft is (or was) to be sent; null when it is not scheduled.",
      resolve: (draft) => draft.send_at,
    }),
    sendStatus: t.field({ type: DraftSendStatus, resolve: (draft) => draft.send_status }),
    failureReason: t.exposeString("failure_reason", {
      nullable: true,
      description: "Why its scheduled send failed (sendStatus FAILED).",
    }),
    attachments: t.field({
      type: [AttachmentRef],
      description:
        "Files sent with the draft, in the order given. Their contentBase64 and downloadUrl follow a message's attachments' rules; a download link needs DRAFT_READ and ends when the draft is deleted.",
      resolve: (draft, _args, context) =>
        contextLoader<string, DraftAttachment[]>(context, "draftAttachments", async (ids) => {
          const byDraft = await attachmentsOfDrafts(context.services.db, scopeOf(context), ids);
          return ids.map((id) => byDraft.get(id) ?? []);
        }).load(draft.id),
    }),
    createdAt: t.field({ type: "DateTime", resolve: (draft) => draft.created_at }),
    updatedAt: t.field({ type: "DateTime", resolve: (draft) => draft.updated_at }),
  }),
});

builder.queryFields((t) => ({
  drafts: t.connection(
    {
      type: DraftRef,
      ...requires("DRAFT_READ"),
      description: "Drafts the caller can see, newest first; with sendStatus, only those in that state.",
      args: { inboxId: t.arg.id(), sendStatus: t.arg({ type: DraftSendStatus }) },
      resolve: (_root, args, context) =>
        keysetConnection(
          args,
          (draft: DraftSummary) => draft.id,
          isIdKey,
          (page) =>
            listDrafts(
              context.services.db,
              scopeOf(context),
              { inboxId: optionalId(args.inboxId, "Inbox"), sendStatus: args.sendStatus ?? undefined },
              page,
            ),
        ),
    },
    connectionOf(DraftRef),
  ),
  draft: t.field({
    type: DraftRef,
    ...requires("DRAFT_READ"),
    args: { id: t.arg.id({ required: true }) },
    resolve: (_root, args) => decodeId(String(args.id), "Draft"),
  }),
}));

/** The description of a recipient list, in drafts and sends alike. */
export const recipients = (description: string) => ({
  description: `${description} Each an address (a@example.com) or a name and address (Ann <a@example.com>); at most 100.`,
});

/** A file to attach, as sends and drafts take it. */
export const AttachmentInput = builder.inputType("AttachmentInput", {
  fields: (t) => ({
    filename: t.string({ required: true }),
    contentType: t.string({ description: "A MIME type; unset: guessed from the filename." }),
    contentBase64: t.string({
      required: true,
      description: "The file's bytes, base64-encoded.",
      ...MAIL_BODY,
    }),
  }),
});

/** What a draft holds, as its create and update inputs both take it. */
const draftContent = (t: InputFieldBuilder<BuilderTypes, "InputObject">) => ({
  to: t.stringList(recipients("Recipients.")),
  cc: t.stringList(recipients("Copy recipients.")),
  bcc: t.stringList(recipients("Blind copy recipients.")),
  subject: t.string({ description: "One line, at most 998 characters." }),
  text: t.string({ ...MAIL_BODY }),
  html: t.string({ ...MAIL_BODY }),
});

const CreateDraftInput = builder.inputType("CreateDraftInput", {
  fields: (t) => ({
    inboxId: t.id({ required: true }),
    ...draftContent(t),
    inReplyToMessageId: t.id({
      description:
        "A message of the same inbox this draft replies to. Without recipients, the draft is sent to its sender.",
    }),
    replyAll: t.boolean({
      description: "With inReplyToMessageId: also to everyone else that message was addressed to.",
    }),
    forwardOfMessageId: t.id({
      description:
        "A message of the same inbox this draft forwards, attached whole (message/rfc822) when sent.",
    }),
    sendAt: t.field({
      type: "DateTime",
      description: "Schedules the send: not in the past, at most 90 days ahead.",
    }),
    attachments: t.field({
      type: [AttachmentInput],
      description:
        "Files sent with the draft. The same limits as a send's: at most 100, and the composed message must fit MAX_OUTBOUND_BYTES.",
    }),
  }),
});

const UpdateDraftInput = builder.inputType("UpdateDraftInput", {
  description: "Only the fields given change; an explicit null clears one.",
  fields: (t) => ({
    id: t.id({ required: true }),
    ...draftContent(t),
    sendAt: t.field({
      type: "DateTime",
      description:
        "Schedules (or moves) the send: not in the past, at most 90 days ahead. An explicit null unschedules.",
    }),
    attachments: t.field({
      type: [AttachmentInput],
      description:
        "Replaces the draft's attachments with these (the same limits as a send's); an explicit null or an empty list removes them all.",
    }),
  }),
});

const DraftPayload = builder.simpleObject("DraftPayload", {
  fields: (t) => ({ draft: t.field({ type: DraftRef }) }),
});

builder.mutationFields((t) => ({
  createDraft: t.field({
    type: DraftPayload,
    ...requires("DRAFT_CREATE"),
    args: { input: t.arg({ type: CreateDraftInput, required: true }) },
    resolve: async (_root, { input }, context) => ({
      draft: await createDraft(
        context.services,
        scopeOf(context),
        {
          ...input,
          inboxId: decodeId(String(input.inboxId), "Inbox"),
          inReplyToMessageId: optionalId(input.inReplyToMessageId, "Message"),
          forwardOfMessageId: optionalId(input.forwardOfMessageId, "Message"),
        },
        requiresApprovalOf(context),
      ),
    }),
  }),
  updateDraft: t.field({
    type: DraftPayload,
    ...requires("DRAFT_UPDATE"),
    args: { input: t.arg({ type: UpdateDraftInput, required: true }) },
    resolve: async (_root, { input }, context) => ({
      draft: await updateDraft(
        context.services,
        scopeOf(context),
        { ...input, id: decodeId(String(input.id), "Draft") },
        requiresApprovalOf(context),
      ),
    }),
  }),
  deleteDraft: t.field({
    type: DeletePayloadRef,
    ...requires("DRAFT_DELETE"),
    args: { input: t.arg({ type: DeleteInputRef, required: true }) },
    resolve: async (_root, { input }, context) => {
      await removeDraft(context.services, scopeOf(context), decodeId(String(input.id), "Draft"));
      return { deletedId: input.id };
    },
  }),
}));
