// Group commit for inbound mail: one message per transaction means one fsync per message. Here
// messages stored at the same time (concurrent SMTP sessions, deliveries between hosted inboxes) share one transaction: one commit acknowledges all of them. Nobody waits for a
// batch to fill: a message that finds nothing committing goes at once, and those that arrive while
// a transaction commits form the next one. A database that stops answering holds nothing up for
// longer than the queue's timeout: each message is answered then, and a stalled transaction no
// longer keeps the next one waiting.
import type { ControlledTransaction } from "kysely";
import type { Db } from "../db/database.ts";
import type { Database } from "../db/types.ts";
import { listRefusal } from "../list-entries/matching.ts";
import { type ListEntry, listEntriesForInboxes } from "../list-entries/repository.ts";
import type { Logger } from "../logger.ts";
import type { MessageData, NewMessage, StoredCopy } from "../mail/message.ts";
import type { HostedInbox } from "../mail/recipient-repository.ts";
import { storeMessages } from "../mail/store.ts";
import { DatabaseTimeout } from "./deadline.ts";

/** One copy of an inbound message, for one inbox. */
export interface InboundCopy {
  inbox: HostedInbox;
  /** Its labels before the inbox's RECEIVE lists apply (they are read when its batch is stored). */
  data: MessageData;
  /** The sender as the From header and the envelope give it, checked against the RECEIVE lists. */
  senders: readonly string[];
}

export interface IngestQueue {
  /**
   * Stores one message's copies, all or none, and resolves once they are committed; rejects when
   * they were not (the database failed: the sender should try again later), or with a
   * DatabaseTimeout when they were not committed in time (they may still commit: a retry is then
   * found to be a duplicate).
   */
  store(copies: readonly InboundCopy[]): Promise<StoredCopy[]>;
  /** Messages waiting for the next transaction (not those of the one under way). */
  waiting(): number;
  /** Transactions committed so far and the messages they stored: their ratio is the batch size. */
  stats(): { commits: number; messages: number };
}

export interface IngestQueueOptions {
  /** Copies in one transaction at most (a message to several inboxes counts each). */
  maxCopies?: number;
  /** Raw bytes in one transaction at most, counted once per copy; a larger message goes alone. */
  maxBytes?: number;
  /** How long a message may wait to be committed, queued and in its transaction; unset: no bound. */
  timeoutMs?: number;
  /**
   * Transactions under way at once (1: group commit, those arriving meanwhile wait and share the
   * next). More, with maxCopies 1, turns group commit off: each message commits on its own at once.
   */
  maxTransactions?: number;
}

/** Transient conflicts worth one more try: a concurrent identical delivery, a deadlock, serialization. */
const RETRYABLE = new Set(["23505", "40P01", "40001"]);
const ATTEMPTS = 3;

interface Job {
  copies: readonly InboundCopy[];
  bytes: number;
  attempts: number;
  /** Answered (stored, refused or timed out): a later outcome changes nothing, and it is not retried. */
  settled: boolean;
  resolve(copies: StoredCopy[]): void;
  reject(error: unknown): void;
}

export function createIngestQueue(db: Db, logger: Logger, options: IngestQueueOptions = {}): IngestQueue {
  const maxCopies = options.maxCopies ?? 64;
  const maxBytes = options.maxBytes ?? 16 * 1024 * 1024;
  const timeoutMs = options.timeoutMs;
  const maxTransactions = options.maxTransactions ?? 1;
  const queue: Job[] = [];
  /** The transactions under way. */
  const current = new Set<symbol>();
  const stats = { commits: 0, messages: 0 };

  function next(): void {
    while (current.size < maxTransactions && queue.length > 0) start();
  }

  function start(): void {
    const token = Symbol("batch");
    current.add(token);
    const batch: Job[] = [];
    let copies = 0;
    let bytes = 0;
    for (let job = queue[0]; job; job = queue[0]) {
      const fits = copies + job.copies.length <= maxCopies && bytes + job.bytes <= maxBytes;
      if (batch.length > 0 && !fits) break;
      batch.push(queue.shift() as Job);
      copies += job.copies.length;
      bytes += job.bytes;
    }
    let watchdog: NodeJS.Timeout | undefined;
    const done = () => {
      clearTimeout(watchdog);
      if (!current.delete(token)) return;
      next();
    };
    // Its messages have all timed out by then (each counts from its arrival, before the batch began).
    if (timeoutMs !== undefined) {
      watchdog = setTimeout(() => {
        logger.warn(
          { messages: batch.length },
          "a batch of inbound mail is stalled: the next goes without it",
        );
        done();
      }, timeoutMs);
    }
    commit(batch)
      .catch((error: unknown) => {
        logger.error({ err: error }, "group commit failed unexpectedly");
        for (const job of batch) job.reject(error);
      })
      .finally(done);
  }

  /**
   * Settles every job of the batch; never rejects. All of them are stored in one transaction. When
   * a statement fails, one message may be at fault (a constraint it violates, say), and it must not
   * cost the others their place: the batch goes again with each message in its own savepoint, so
   * only the faulty one is left out. A failed COMMIT, or a lost connection, fails every message.
   */
  async function commit(batch: Job[]): Promise<void> {
    let outcomes: Outcome[];
    try {
      outcomes = await attempt(batch, false);
    } catch (error) {
      if (!(error instanceof BeforeCommit) || batch.length === 1) return failAll(batch, unwrap(error));
      logger.warn({ err: error.cause, messages: batch.length }, "a batch of inbound mail failed: one by one");
      try {
        outcomes = await attempt(batch, true);
      } catch (second) {
        return failAll(batch, unwrap(second));
      }
    }
    stats.commits++;
    const retries: Job[] = [];
    outcomes.forEach((stored, i) => {
      const job = batch[i] as Job;
      if (!(stored instanceof Failure)) {
        stats.messages++;
        job.resolve(stored);
      } else if (!retried(job, stored.error)) job.reject(stored.error);
      else retries.push(job);
    });
    // Ahead of later arrivals: they were accepted first.
    queue.unshift(...retries);
  }

  /**
   * One transaction for the batch. Throws BeforeCommit when a statement failed and the transaction
   * was rolled back on a connection that still works (the database is there: a message may be at
   * fault); anything else thrown means the batch cannot be stored now.
   */
  async function attempt(batch: Job[], isolated: boolean): Promise<Outcome[]> {
    // The lists are read beside the transaction, while it begins: one round trip less to wait for.
    // (Nothing in the transaction depends on reading them inside it.)
    const [begun, read] = await Promise.allSettled([
      db.startTransaction().execute(),
      listEntriesForInboxes(
        db,
        batch.flatMap((job) => job.copies.map((copy) => copy.inbox)),
        "RECEIVE",
      ),
    ]);
    if (begun.status === "rejected") throw begun.reason;
    const trx = begun.value;
    let outcomes: Outcome[];
    try {
      if (read.status === "rejected") throw read.reason;
      const lists = read.value;
      const messages = batch.map((job) => job.copies.map((copy) => labelled(copy, lists)));
      outcomes = isolated
        ? await storeIsolated(trx, messages)
        : split(await storeMessages(trx, messages.flat(), "MESSAGE_RECEIVED"), messages);
    } catch (error) {
      try {
        await trx.rollback().execute();
      } catch {
        throw error;
      }
      throw new BeforeCommit(error);
    }
    try {
      await trx.commit().execute();
    } catch (error) {
      // Nothing of the batch was stored. (Or, when the connection broke during COMMIT, perhaps all
      // of it: the senders are not acknowledged, and their retries are deduplicated.)
      await trx
        .rollback()
        .execute()
        .catch(() => {});
      throw error;
    }
    return outcomes;
  }

  /** Each message in its own savepoint: one that fails is rolled back alone. */
  async function storeIsolated(
    trx: ControlledTransaction<Database>,
    messages: NewMessage[][],
  ): Promise<Outcome[]> {
    const outcomes: Outcome[] = [];
    for (const copies of messages) {
      const one = await trx.savepoint("message").execute();
      try {
        outcomes.push(await storeMessages(one, copies, "MESSAGE_RECEIVED"));
        await one.releaseSavepoint("message").execute();
      } catch (error) {
        // Throws in turn when the connection is gone: then the whole batch fails.
        await one.rollbackToSavepoint("message").execute();
        outcomes.push(new Failure(error));
      }
    }
    return outcomes;
  }

  function failAll(batch: Job[], error: unknown): void {
    if (batch.length > 1)
      logger.warn({ err: error, messages: batch.length }, "a batch of inbound mail failed");
    const retries = batch.filter((job) => retried(job, error));
    for (const job of batch) if (!retries.includes(job)) job.reject(error);
    queue.unshift(...retries);
  }

  /** Whether the job gets another attempt (in the next transaction) after this error. */
  function retried(job: Job, error: unknown): boolean {
    const code = (error as { code?: string }).code;
    if (job.settled || job.attempts >= ATTEMPTS || code === undefined || !RETRYABLE.has(code)) return false;
    job.attempts++;
    return true;
  }

  return {
    store(copies) {
      return new Promise<StoredCopy[]>((resolve, reject) => {
        const bytes = copies.reduce((sum, copy) => sum + copy.data.sizeBytes, 0);
        let timer: NodeJS.Timeout | undefined;
        const settle = (answer: () => void) => {
          if (job.settled) return;
          job.settled = true;
          clearTimeout(timer);
          answer();
        };
        const job: Job = {
          copies,
          bytes,
          attempts: 1,
          settled: false,
          resolve: (stored) => settle(() => resolve(stored)),
          reject: (error) => settle(() => reject(error)),
        };
        if (timeoutMs !== undefined) {
          timer = setTimeout(() => {
            // Not begun: it never will be. In a transaction: that may still commit it.
            const at = queue.indexOf(job);
            if (at !== -1) queue.splice(at, 1);
            job.reject(new DatabaseTimeout(`storing a message took longer than ${timeoutMs} ms`));
          }, timeoutMs);
        }
        queue.push(job);
        next();
      });
    },
    waiting: () => queue.length,
    stats: () => ({ ...stats }),
  };
}

/** Why one message of a batch was not stored; the rest of the batch was. */
class Failure {
  constructor(readonly error: unknown) {}
}

type Outcome = StoredCopy[] | Failure;

/** A statement failed, and the transaction was rolled back on a connection that still works. */
class BeforeCommit extends Error {
  constructor(override readonly cause: unknown) {
    super("a statement of the batch failed", { cause });
  }
}

function unwrap(error: unknown): unknown {
  return error instanceof BeforeCommit ? error.cause : error;
}

/** The copies stored for all messages at once, message by message. */
function split(stored: StoredCopy[], messages: NewMessage[][]): Outcome[] {
  let at = 0;
  return messages.map((copies) => {
    at += copies.length;
    return stored.slice(at - copies.length, at);
  });
}

/** The copy with `blocked` added when the inbox's RECEIVE lists refuse its sender. */
function labelled(copy: InboundCopy, lists: ReadonlyMap<string, ListEntry[]>): NewMessage {
  const entries = lists.get(copy.inbox.inboxId) ?? [];
  if (listRefusal(entries, copy.senders) === undefined) return { inbox: copy.inbox, data: copy.data };
  return { inbox: copy.inbox, data: { ...copy.data, labels: [...copy.data.labels, "blocked"] } };
}
