// The answer to an approval-bound caller's send (docs/sending.md, "Approval before sending"): its
// mail waits as a draft, and the call fails APPROVAL_REQUIRED naming that draft. Shared by the send
// itself and by a repeat of it with the same idempotency key, which gets the same answer.
import { encodeGlobalID } from "@pothos/plugin-relay";
import { GraphQLError } from "graphql";

/** The error an approval-bound caller's send ends with: the held draft's global id in draftId. */
export function approvalRequired(draftId: string): GraphQLError {
  return new GraphQLError(
    "This key's mail must be approved before it is sent: it waits as a draft in PENDING_APPROVAL. Approve it with approveDraft as a person or with a key that is not approval-bound.",
    { extensions: { code: "APPROVAL_REQUIRED", draftId: encodeGlobalID("Draft", draftId) } },
  );
}

export function isApprovalRequired(error: unknown): boolean {
  return error instanceof GraphQLError && error.extensions.code === "APPROVAL_REQUIRED";
}
