// Scheduled drafts: the graphile-worker job that sends a draft at its sendAt (src/outbound/scheduled.ts
// runs it), and the rules for sendAt (docs/sending.md, "Scheduled drafts"). One job per draft, under
// a job key: scheduling again replaces the pending job, unscheduling removes it.
import { sql } from "kysely";
import type { Db } from "../db/database.ts";
import { badUserInput } from "../errors.ts";
import { addJob } from "../jobs/worker.ts";

export const SEND_SCHEDULED_DRAFT = "send-scheduled-draft";
export const MAX_SCHEDULE_AHEAD_MS = 90 * 24 * 60 * 60 * 1000;
/** Attempts of the job when the database fails under it; a refused send fails the draft at once. */
export const SCHEDULED_SEND_MAX_ATTEMPTS = 5;

export interface ScheduledDraftPayload {
  orgId: string;
  draftId: string;
}

const jobKey = (orgId: string, draftId: string) => `${SEND_SCHEDULED_DRAFT}:${orgId}:${draftId}`;

/** BAD_USER_INPUT (field sendAt) for a time in the past or more than 90 days ahead. */
export function checkedSendAt(sendAt: Date, now: Date): Date {
  if (Number.isNaN(sendAt.getTime())) throw badUserInput("sendAt is not a valid time.", "sendAt");
  if (sendAt.getTime() < now.getTime()) throw badUserInput("sendAt is in the past.", "sendAt");
  if (sendAt.getTime() > now.getTime() + MAX_SCHEDULE_AHEAD_MS) {
    throw badUserInput("sendAt may be at most 90 days ahead.", "sendAt");
  }
  return sendAt;
}

/** Enqueues (or moves) the draft's send to `sendAt`, in the caller's transaction. */
export async function scheduleDraftJob(trx: Db, orgId: string, draftId: string, sendAt: Date): Promise<void> {
  const payload: ScheduledDraftPayload = { orgId, draftId };
  await addJob(
    trx,
    SEND_SCHEDULED_DRAFT,
    { ...payload },
    {
      runAt: sendAt,
      jobKey: jobKey(orgId, draftId),
      jobKeyMode: "replace",
      maxAttempts: SCHEDULED_SEND_MAX_ATTEMPTS,
    },
  );
}

/**
 * Removes the draft's pending send, in the caller's transaction. A job already running is left to
 * finish: it finds the draft no longer SCHEDULED (or gone) under its row lock and sends nothing.
 */
export async function unscheduleDraftJob(trx: Db, orgId: string, draftId: string): Promise<void> {
  await sql`SELECT graphile_worker.remove_job(${jobKey(orgId, draftId)})`.execute(trx);
}
