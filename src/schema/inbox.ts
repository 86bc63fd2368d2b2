import { badUserInput, notFound } from "../errors.ts";
import { type Inbox, inboxByEmail, inboxesByIds, listInboxes } from "../inboxes/repository.ts";
import { createInbox } from "../inboxes/service.ts";
import { builder, requires } from "./builder.ts";
import { connectionOf, isIdKey, keysetConnection } from "./connection.ts";
import { scopeOf } from "./context.ts";
import { decodeId, optionalId } from "./global-id.ts";
import { inIdOrder, loadableNodeRef } from "./loaders.ts";
import { PodRef } from "./pod.ts";

export const InboxRef = loadableNodeRef<Inbox, string, string>("Inbox", {
  id: { resolve: (inbox) => inbox.id },
  load: async (ids, context) =>
    inIdOrder(ids, await inboxesByIds(context.services.db, scopeOf(context), ids), "Inbox"),
});

InboxRef.implement({
  fields: (t) => ({
    email: t.exposeString("email"),
    displayName: t.exposeString("display_name", { nullable: true }),
    rejectUnauthenticated: t.exposeBoolean("reject_unauthenticated", {
      description:
        "Whether mail whose DMARC verdict is FAIL is refused at the end of SMTP DATA (550 5.7.1, nothing stored).",
    }),
    pod: t.field({ type: PodRef, resolve: (inbox) => inbox.pod_id }),
    createdAt: t.field({ type: "DateTime", resolve: (inbox) => inbox.created_at }),
  }),
});

builder.objectField(PodRef, "inboxes", (t) =>
  t.connection(
    {
      type: InboxRef,
      ...requires("INBOX_READ"),
      resolve: (pod, args, context) =>
        keysetConnection(
          args,
          (inbox: Inbox) => inbox.id,
          isIdKey,
          (page) => listInboxes(context.services.db, scopeOf(context), { podId: pod.id }, page),
        ),
    },
    connectionOf(InboxRef),
  ),
);

builder.queryFields((t) => ({
  inboxes: t.connection(
    {
      type: InboxRef,
      ...requires("INBOX_READ"),
      args: { podId: t.arg.id() },
      resolve: (_root, args, context) =>
        keysetConnection(
          args,
          (inbox: Inbox) => inbox.id,
          isIdKey,
          (page) =>
            listInboxes(
              context.services.db,
              scopeOf(context),
              { podId: optionalId(args.podId, "Pod") },
              page,
            ),
        ),
    },
    connectionOf(InboxRef),
  ),
  inbox: t.field({
    type: InboxRef,
    ...requires("INBOX_READ"),
    description: "One inbox, by id or by email address.",
    args: { id: t.arg.id(), email: t.arg.string() },
    resolve: async (_root, args, context) => {
      if ((args.id == null) === (args.email == null))
        throw badUserInput("Give exactly one of id and email.", "id");
      if (args.id != null) return decodeId(String(args.id), "Inbox");
      const inbox = await inboxByEmail(context.services.db, scopeOf(context), args.email as string);
      if (!inbox) throw notFound("Inbox");
      return inbox;
    },
  }),
}));

const CreateInboxInput = builder.inputType("CreateInboxInput", {
  fields: (t) => ({
    podId: t.id({
      description:
        "Defaults to the caller's pod; for an organization-wide caller, the organization's first pod.",
    }),
    username: t.string({ description: "Defaults to a random agent-… name." }),
    domain: t.string({ description: "MAIL_DOMAIN (the default) or a verified domain of the pod." }),
    displayName: t.string(),
    clientId: t.string(),
    rejectUnauthenticated: t.boolean({
      description: "Refuse mail whose DMARC verdict is FAIL (550 5.7.1 at the end of DATA). Default false.",
    }),
  }),
});

const CreateInboxPayload = builder.simpleObject("CreateInboxPayload", {
  fields: (t) => ({ inbox: t.field({ type: InboxRef }) }),
});

builder.mutationField("createInbox", (t) =>
  t.field({
    type: CreateInboxPayload,
    ...requires("INBOX_CREATE"),
    args: { input: t.arg({ type: CreateInboxInput, required: true }) },
    resolve: async (_root, { input }, context) => ({
      inbox: await createInbox(context.services, scopeOf(context), {
        ...input,
        podId: optionalId(input.podId, "Pod"),
      }),
    }),
  }),
);
