// Sending: sendMessage, replyToMessage, forwardMessage and sendDraft, all answered with the sent copy.

import { forwardMessage, replyToMessage, sendDraft, sendMessage } from "../outbound/send.ts";
import { builder, requires } from "./builder.ts";
import { scopeOf } from "./context.ts";
import { recipients } from "./draft.ts";
import { decodeId } from "./global-id.ts";
import { MAIL_BODY } from "./input-rules.ts";
import { MessageRef } from "./message.ts";

const AttachmentInput = builder.inputType("AttachmentInput", {
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

const SendMessageInput = builder.inputType("SendMessageInput", {
  fields: (t) => ({
    inboxId: t.id({ required: true, description: "The inbox the message is sent from." }),
    to: t.stringList({ required: true, ...recipients("Recipients.") }),
    cc: t.stringList(recipients("Copy recipients.")),
    bcc: t.stringList(recipients("Blind copy recipients: in the envelope only, never in a header.")),
    replyTo: t.stringList(recipients("Reply-To addresses.")),
    subject: t.string({ description: "One line, at most 998 characters." }),
    text: t.string({ ...MAIL_BODY }),
    html: t.string({ ...MAIL_BODY }),
    labels: t.stringList({ description: "Labels for the sent copy, besides `sent`." }),
    attachments: t.field({
      type: [AttachmentInput],
      description: "The composed message, attachments included, must fit MAX_OUTBOUND_BYTES.",
    }),
  }),
});

const ReplyToMessageInput = builder.inputType("ReplyToMessageInput", {
  fields: (t) => ({
    messageId: t.id({ required: true }),
    replyAll: t.boolean({
      description: "Also to the original's other To and Cc recipients (never to the replying inbox itself).",
    }),
    text: t.string({ ...MAIL_BODY }),
    html: t.string({ ...MAIL_BODY }),
    attachments: t.field({ type: [AttachmentInput] }),
    labels: t.stringList({ description: "Labels for the sent copy, besides `sent`." }),
  }),
});

const ForwardMessageInput = builder.inputType("ForwardMessageInput", {
  fields: (t) => ({
    messageId: t.id({ required: true }),
    to: t.stringList({ required: true, ...recipients("Recipients.") }),
    cc: t.stringList(recipients("Copy recipients.")),
    bcc: t.stringList(recipients("Blind copy recipients.")),
    text: t.string({ description: "A note above the forwarded message.", ...MAIL_BODY }),
    html: t.string({ ...MAIL_BODY }),
  }),
});

const SendDraftInput = builder.inputType("SendDraftInput", {
  fields: (t) => ({ id: t.id({ required: true }) }),
});

const SendMessagePayload = builder.simpleObject("SendMessagePayload", {
  fields: (t) => ({
    message: t.field({
      type: MessageRef,
      description: "The sent copy (label `sent`), in the sending inbox; delivery follows in the background.",
    }),
  }),
});

builder.mutationFields((t) => ({
  sendMessage: t.field({
    type: SendMessagePayload,
    ...requires("MESSAGE_SEND"),
    description:
      "Sends a new message. Hosted recipients (any organization) receive it directly; others through the SMTP relay, which must then be configured.",
    args: { input: t.arg({ type: SendMessageInput, required: true }) },
    resolve: async (_root, { input }, context) => ({
      message: await sendMessage(context.services, scopeOf(context), {
        ...input,
        inboxId: decodeId(String(input.inboxId), "Inbox"),
      }),
    }),
  }),
  replyToMessage: t.field({
    type: SendMessagePayload,
    ...requires("MESSAGE_SEND"),
    description:
      "Replies from the message's inbox to its Reply-To (or sender), in its thread (In-Reply-To and References set).",
    args: { input: t.arg({ type: ReplyToMessageInput, required: true }) },
    resolve: async (_root, { input }, context) => ({
      message: await replyToMessage(context.services, scopeOf(context), {
        ...input,
        messageId: decodeId(String(input.messageId), "Message"),
      }),
    }),
  }),
  forwardMessage: t.field({
    type: SendMessagePayload,
    ...requires("MESSAGE_SEND"),
    description:
      "Forwards a message from its inbox: your text or html, with the original attached unchanged as message/rfc822.",
    args: { input: t.arg({ type: ForwardMessageInput, required: true }) },
    resolve: async (_root, { input }, context) => ({
      message: await forwardMessage(context.services, scopeOf(context), {
        ...input,
        messageId: decodeId(String(input.messageId), "Message"),
      }),
    }),
  }),
  sendDraft: t.field({
    type: SendMessagePayload,
    ...requires("DRAFT_SEND"),
    description: "Sends a draft as it stands and deletes it.",
    args: { input: t.arg({ type: SendDraftInput, required: true }) },
    resolve: async (_root, { input }, context) => ({
      message: await sendDraft(context.services, scopeOf(context), decodeId(String(input.id), "Draft")),
    }),
  }),
}));
