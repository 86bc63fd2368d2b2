// Sending: sendMessage, replyToMessage, forwardMessage and sendDraft, all answered with the sent copy.

import { type FragmentDefinitionNode, type GraphQLResolveInfo, Kind, type SelectionSetNode } from "graphql";
import { badUserInput } from "../errors.ts";
import { MAX_IDEMPOTENCY_KEY_LENGTH } from "../outbound/idempotency.ts";
import { approveDraft, forwardMessage, replyToMessage, sendDraft, sendMessage } from "../outbound/send.ts";
import { builder, requires } from "./builder.ts";
import { type Context, requiresApprovalOf, scopeOf } from "./context.ts";
import { AttachmentInput, recipients } from "./draft.ts";
import { decodeId } from "./global-id.ts";
import { inputRule, MAIL_BODY } from "./input-rules.ts";
import { MessageRef } from "./message.ts";

/** The mutations that send mail, to which an `Idempotency-Key` header applies. */
const SEND_MUTATIONS: ReadonlySet<string> = new Set([
  "sendMessage",
  "replyToMessage",
  "forwardMessage",
  "sendDraft",
  "approveDraft",
]);

/** The `idempotencyKey` input field of every send mutation. */
const idempotencyKeyField = {
  description:
    "Sends at most once: within 24 hours, a repeat with this key and the same input returns the first call's message and sends nothing; with another input it fails IDEMPOTENCY_CONFLICT. 1–255 printable characters. The HTTP header Idempotency-Key means the same.",
  ...inputRule({ maxLength: MAX_IDEMPOTENCY_KEY_LENGTH }),
} as const;

/** Top-level fields of the operation that send mail, through fragments and aliases. */
function sendFieldsIn(
  selectionSet: SelectionSetNode,
  fragments: Record<string, FragmentDefinitionNode>,
): number {
  let count = 0;
  for (const selection of selectionSet.selections) {
    if (selection.kind === Kind.FIELD) count += SEND_MUTATIONS.has(selection.name.value) ? 1 : 0;
    else if (selection.kind === Kind.INLINE_FRAGMENT)
      count += sendFieldsIn(selection.selectionSet, fragments);
    else {
      const fragment = fragments[selection.name.value];
      if (fragment) count += sendFieldsIn(fragment.selectionSet, fragments);
    }
  }
  return count;
}

/**
 * The key for this send: the input's, else the request's `Idempotency-Key` header, which applies only
 * to an operation that runs one send mutation (with two it would make the second a repeat of the
 * first). Both given must agree.
 */
export function idempotencyKeyFor(
  inputKey: string | null | undefined,
  context: Context,
  info: GraphQLResolveInfo,
): string | undefined {
  const header = context.idempotencyKeyHeader;
  if (header === undefined) return inputKey ?? undefined;
  if (sendFieldsIn(info.operation.selectionSet, info.fragments) > 1) {
    throw badUserInput(
      "The Idempotency-Key header applies to an operation that runs one send mutation; give each send its own idempotencyKey instead.",
      "idempotencyKey",
    );
  }
  if (inputKey != null && inputKey !== header) {
    throw badUserInput("idempotencyKey and the Idempotency-Key header differ.", "idempotencyKey");
  }
  return header;
}

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
    idempotencyKey: t.string(idempotencyKeyField),
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
    idempotencyKey: t.string(idempotencyKeyField),
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
    idempotencyKey: t.string(idempotencyKeyField),
  }),
});

const SendDraftInput = builder.inputType("SendDraftInput", {
  fields: (t) => ({ id: t.id({ required: true }), idempotencyKey: t.string(idempotencyKeyField) }),
});

const ApproveDraftInput = builder.inputType("ApproveDraftInput", {
  fields: (t) => ({ id: t.id({ required: true }), idempotencyKey: t.string(idempotencyKeyField) }),
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
    resolve: async (_root, { input }, context, info) => ({
      message: await sendMessage(
        context.services,
        scopeOf(context),
        {
          ...input,
          inboxId: decodeId(String(input.inboxId), "Inbox"),
          idempotencyKey: idempotencyKeyFor(input.idempotencyKey, context, info),
        },
        requiresApprovalOf(context),
      ),
    }),
  }),
  replyToMessage: t.field({
    type: SendMessagePayload,
    ...requires("MESSAGE_SEND"),
    description:
      "Replies from the message's inbox to its Reply-To (or sender), in its thread (In-Reply-To and References set).",
    args: { input: t.arg({ type: ReplyToMessageInput, required: true }) },
    resolve: async (_root, { input }, context, info) => ({
      message: await replyToMessage(
        context.services,
        scopeOf(context),
        {
          ...input,
          messageId: decodeId(String(input.messageId), "Message"),
          idempotencyKey: idempotencyKeyFor(input.idempotencyKey, context, info),
        },
        requiresApprovalOf(context),
      ),
    }),
  }),
  forwardMessage: t.field({
    type: SendMessagePayload,
    ...requires("MESSAGE_SEND"),
    description:
      "Forwards a message from its inbox: your text or html, with the original attached unchanged as message/rfc822.",
    args: { input: t.arg({ type: ForwardMessageInput, required: true }) },
    resolve: async (_root, { input }, context, info) => ({
      message: await forwardMessage(
        context.services,
        scopeOf(context),
        {
          ...input,
          messageId: decodeId(String(input.messageId), "Message"),
          idempotencyKey: idempotencyKeyFor(input.idempotencyKey, context, info),
        },
        requiresApprovalOf(context),
      ),
    }),
  }),
  sendDraft: t.field({
    type: SendMessagePayload,
    ...requires("DRAFT_SEND"),
    description: "Sends a draft as it stands and deletes it.",
    args: { input: t.arg({ type: SendDraftInput, required: true }) },
    resolve: async (_root, { input }, context, info) => ({
      message: await sendDraft(
        context.services,
        scopeOf(context),
        decodeId(String(input.id), "Draft"),
        requiresApprovalOf(context),
        idempotencyKeyFor(input.idempotencyKey, context, info),
      ),
    }),
  }),
  approveDraft: t.field({
    type: SendMessagePayload,
    ...requires("DRAFT_SEND"),
    description:
      "Sends a draft waiting in PENDING_APPROVAL (held from an approval-bound key) and deletes it. Only a person or a key that is not approval-bound may approve (docs/sending.md).",
    args: { input: t.arg({ type: ApproveDraftInput, required: true }) },
    resolve: async (_root, { input }, context, info) => ({
      message: await approveDraft(
        context.services,
        scopeOf(context),
        decodeId(String(input.id), "Draft"),
        requiresApprovalOf(context),
        idempotencyKeyFor(input.idempotencyKey, context, info),
      ),
    }),
  }),
}));
