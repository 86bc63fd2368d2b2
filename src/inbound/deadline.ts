// Bounds on how long inbound mail waits on the database. Past one, SMTP answers 451 and delivery
// retries later: the sender tries again, and a store that committed late after all is found by
// duplicate detection then, so the retry is stored once.

/** The database did not answer in time: nothing may be assumed stored (nor not stored). */
export class DatabaseTimeout extends Error {
  override name = "DatabaseTimeout";
}

/** `promise`, or a DatabaseTimeout once `ms` have passed; the work itself goes on unwatched. */
export function withDeadline<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new DatabaseTimeout(`${what} took longer than ${ms} ms`)), ms);
  });
  // A late rejection must not surface as unhandled once nobody waits for it.
  promise.catch(() => {});
  return Promise.race([promise, expired]).finally(() => clearTimeout(timer));
}
