// updateInbox and deleteInbox: the inbox mutations after creation (createInbox lives beside the type).

import { removeInbox, updateInbox } from "../inboxes/service.ts";
import { builder, requires } from "./builder.ts";
import { scopeOf } from "./context.ts";
import { DeleteInputRef, DeletePayloadRef } from "./delete.ts";
import { decodeId } from "./global-id.ts";
import { InboxRef } from "./inbox.ts";

const UpdateInboxInput = builder.inputType("UpdateInboxInput", {
  fields: (t) => ({
    id: t.id({ required: true }),
    displayName: t.string({
      description:
        "Trimmed; at most 200 characters. An empty string removes the display name; omitted or null leaves it.",
    }),
    rejectUnauthenticated: t.boolean({
      description:
        "Refuse mail whose DMARC verdict is FAIL (550 5.7.1 at the end of DATA); omitted or null leaves it.",
    }),
  }),
});

const UpdateInboxPayload = builder.simpleObject("UpdateInboxPayload", {
  fields: (t) => ({ inbox: t.field({ type: InboxRef }) }),
});

builder.mutationFields((t) => ({
  updateInbox: t.field({
    type: UpdateInboxPayload,
    ...requires("INBOX_UPDATE"),
    args: { input: t.arg({ type: UpdateInboxInput, required: true }) },
    resolve: async (_root, { input }, context) => ({
      inbox: await updateInbox(context.services, scopeOf(context), {
        id: decodeId(String(input.id), "Inbox"),
        displayName: input.displayName,
        rejectUnauthenticated: input.rejectUnauthenticated,
      }),
    }),
  }),
  deleteInbox: t.field({
    type: DeletePayloadRef,
    description:
      "Deletes the inbox and everything in it: mail, drafts, and the keys scoped to it (revoked at once).",
    ...requires("INBOX_DELETE"),
    args: { input: t.arg({ type: DeleteInputRef, required: true }) },
    resolve: async (_root, { input }, context) => {
      await removeInbox(context.services, scopeOf(context), decodeId(String(input.id), "Inbox"));
      return { deletedId: input.id };
    },
  }),
}));
