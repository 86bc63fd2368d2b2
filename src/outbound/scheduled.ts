// The job that sends a scheduled draft at its sendAt (docs/sending.md, "Scheduled drafts"). Exactly
// once, whatever the number of nodes or restarts: the job (one per draft, under a job key) marks the
// draft SENDING under its row lock only while it is SCHEDULED and due; the send then stores the
// message and marks the draft SENT in one transaction, only if it is still SENDING. A run that finds
// the draft SENDING (an earlier run died before its send committed) sends it: nothing was sent yet,
// since SENT and the message commit together.
import type { Job } from "graphile-worker";
import { GraphQLError } from "graphql";
import type { TenantScope } from "../auth/principal.ts";
import { lockDraft, updateDraft } from "../drafts/repository.ts";
import { type ScheduledDraftPayload, SEND_SCHEDULED_DRAFT } from "../drafts/schedule.ts";
import type { JobTask } from "../jobs/worker.ts";
import type { Services } from "../services.ts";
import { isApprovalRequired } from "./approval.ts";
import { DraftNoLongerSending, sendScheduledDraft } from "./send.ts";

export { SEND_SCHEDULED_DRAFT };

const MAX_REASON_LENGTH = 1000;

export function sendScheduledDraftTask(services: Services): JobTask {
  return {
    run: (payload, helpers) => runScheduledSend(services, payload as ScheduledDraftPayload, helpers.job),
  };
}

async function runScheduledSend(services: Services, payload: ScheduledDraftPayload, job: Job): Promise<void> {
  const { db } = services;
  // The job's own reach: the draft's organization, every label visible (what the draft's author
  // could see was checked when the draft was written).
  const scope: TenantScope = { orgId: payload.orgId, podId: null, inboxId: null, hiddenLabels: [] };
  const due = await db.transaction().execute(async (trx) => {
    const draft = await lockDraft(trx, scope, payload.draftId);
    if (!draft) return false;
    if (draft.send_status === "SENDING") return true;
    // Unscheduled, sent by hand or failed meanwhile; or moved later, where its new job waits.
    if (draft.send_status !== "SCHEDULED" || !draft.send_at || draft.send_at.getTime() > Date.now() + 1000)
      return false;
    await updateDraft(trx, scope, payload.draftId, { send_status: "SENDING" }, ["SCHEDULED"]);
    return true;
  });
  if (!due) return;
  try {
    const message = await sendScheduledDraft(services, scope, payload.draftId);
    services.logger.info(
      { orgId: payload.orgId, draftId: payload.draftId, messageId: message.id },
      "scheduled draft sent",
    );
  } catch (error) {
    if (error instanceof DraftNoLongerSending) return;
    // Written by an approval-bound key: it now waits in PENDING_APPROVAL (docs/sending.md).
    if (isApprovalRequired(error)) {
      services.logger.info(
        { orgId: payload.orgId, draftId: payload.draftId },
        "scheduled draft held for approval",
      );
      return;
    }
    // A refused send (a blocked recipient, no relay for an outside address) will not get better; the
    // database failing might, while attempts remain (the draft stays SENDING and the job retries).
    if (!(error instanceof GraphQLError) && job.attempts < job.max_attempts) throw error;
    const reason =
      error instanceof GraphQLError
        ? error.message
        : `gave up after ${job.attempts} attempts: ${(error as Error).message}`;
    await updateDraft(
      db,
      scope,
      payload.draftId,
      { send_status: "FAILED", failure_reason: reason.slice(0, MAX_REASON_LENGTH) },
      ["SENDING"],
    );
    services.logger.warn(
      { orgId: payload.orgId, draftId: payload.draftId, reason },
      "scheduled draft failed",
    );
  }
}
