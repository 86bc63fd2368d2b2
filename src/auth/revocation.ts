// Deleting rows whose cascade removes API keys (a pod's, an inbox's): the keys are revoked on every
// node by notifications sent in the deleting transaction, and on this node before answering.
import type { Db } from "../db/database.ts";
import { type Authenticator, notifyAuthChange } from "./authenticator.ts";

/**
 * Runs a delete whose cascade removes API keys (a pod's or an inbox's), and revokes those keys on
 * every node: one notification each inside the transaction, then our own cache at once.
 */
export async function deleteRevokingKeys<T>(
  services: { db: Db; authenticator: Authenticator },
  orgId: string,
  work: (trx: Db) => Promise<{ deleted: T; apiKeyIds: readonly string[] } | undefined>,
): Promise<T | undefined> {
  const outcome = await services.db.transaction().execute(async (trx) => {
    const result = await work(trx);
    for (const id of result?.apiKeyIds ?? []) await notifyAuthChange(trx, { kind: "apiKey", orgId, id });
    return result;
  });
  for (const id of outcome?.apiKeyIds ?? []) services.authenticator.invalidate({ kind: "apiKey", orgId, id });
  return outcome?.deleted;
}

/**
 * The API keys scoped to a pod (or to one inbox of it): what deleting that pod or inbox removes by
 * cascade, read in the deleting transaction after the row is locked, so they can be revoked.
 */
export async function keysWithin(
  trx: Db,
  orgId: string,
  target: { podId: string; inboxId?: string },
): Promise<string[]> {
  let query = trx
    .selectFrom("api_keys")
    .select("id")
    .where("org_id", "=", orgId)
    .where("pod_id", "=", target.podId);
  if (target.inboxId !== undefined) query = query.where("inbox_id", "=", target.inboxId);
  return (await query.execute()).map((key) => key.id);
}
