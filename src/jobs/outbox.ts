// The job outbox: writers queue jobs in their own transaction without graphile-worker's NOTIFY, and
// nodes move them into graphile-worker after the commit (docs/architecture.md, "Background jobs").
import { sql } from "kysely";
import type pg from "pg";
import { type Db, onJobsCommitted, QUEUES_JOBS } from "../db/database.ts";
import type { Logger } from "../logger.ts";

export interface QueueJobOptions {
  /** Attempts before graphile-worker gives up (its default: 25). */
  maxAttempts?: number;
  /** Jobs sharing a queue name run one at a time, in order. */
  queueName?: string;
}

/**
 * Queues `name` with `payload` in `trx`: a row of the job outbox, which commits or rolls back with
 * the caller's data, and becomes a graphile-worker job once moved (right after the commit, or by a
 * sweep). No job key: a keyed job that another call must replace or remove at once (scheduled
 * drafts) goes through addJob (src/jobs/worker.ts). The job runs when moved, not at a set time.
 * Payloads carry ids, never message bodies or secrets.
 */
export async function queueJob(
  trx: Db,
  name: string,
  payload: Record<string, unknown>,
  options: QueueJobOptions = {},
): Promise<void> {
  await sql`${QUEUES_JOBS} INSERT INTO job_outbox (task, payload, queue_name, max_attempts)
    VALUES (${name}, ${JSON.stringify(payload)}::json, ${options.queueName ?? null}::text,
      ${options.maxAttempts ?? null}::smallint)`.execute(trx);
}

/** Jobs moved per transaction at most. */
const BATCH = 500;

/**
 * One batch, in one transaction: the oldest rows no other mover holds, deleted and handed to
 * graphile_worker.add_jobs in the order they were queued (one NOTIFY for the batch; none when empty).
 * The commit need not wait for its WAL flush (synchronous_commit off): the move is atomic, so a
 * crash that loses it loses the deletion too, and the rows are moved again. Without parameters:
 * one round trip.
 */
const MOVE = `BEGIN;
SET LOCAL synchronous_commit TO off;
WITH moved AS (
  DELETE FROM job_outbox WHERE id IN (
    SELECT id FROM job_outbox ORDER BY id LIMIT ${BATCH} FOR UPDATE SKIP LOCKED
  )
  RETURNING *
), batch AS (
  SELECT count(*) AS n,
    array_agg((task, payload, queue_name, run_at, max_attempts, job_key, NULL::smallint, NULL::text[])
      ::graphile_worker.job_spec ORDER BY id) AS specs
  FROM moved
)
SELECT n, (SELECT count(*) FROM graphile_worker.add_jobs(specs)) AS added FROM batch WHERE n > 0;
COMMIT;`;

/**
 * How often every node moves rows that no commit on it announced: a node died between commit and
 * move, or another process (a tool, a test) wrote them. An empty sweep is one statement that takes no
 * transaction id and flushes nothing; this bounds how late such a job can start.
 */
export const SWEEP_INTERVAL_MS = 200;

/**
 * This node's mover. A commit that queued jobs kicks it (onJobsCommitted); kicks during a move make
 * one more move after it, so that a busy node moves many commits' jobs per transaction. A timer sweeps
 * too: rows of a node that died after its commit, and of a move that failed. Movers on many nodes
 * never take the same row (SKIP LOCKED).
 */
export class JobOutbox {
  private moving: Promise<void> | undefined;
  private again = false;
  private stopped = false;
  private timer: NodeJS.Timeout | undefined;
  private unlisten: () => void = () => {};
  private readonly log: Logger;

  constructor(
    private readonly pool: pg.Pool,
    logger: Logger,
    private readonly sweepIntervalMs = SWEEP_INTERVAL_MS,
  ) {
    this.log = logger.child({ component: "job-outbox" });
  }

  /** Listens for commits, sweeps now (rows left by a previous run) and then periodically. */
  start(): void {
    this.unlisten = onJobsCommitted(this.pool, this.kick);
    this.timer = setInterval(this.kick, this.sweepIntervalMs);
    this.timer.unref();
    this.kick();
  }

  /** Moves what is in the outbox now, or once the move under way ends. */
  readonly kick = (): void => {
    if (this.stopped) return;
    if (this.moving) {
      this.again = true;
      return;
    }
    this.moving = this.drain().finally(() => {
      this.moving = undefined;
      if (this.again) {
        this.again = false;
        this.kick();
      }
    });
  };

  /** Stops listening and sweeping; moves what the last commits queued first. */
  async stop(): Promise<void> {
    this.unlisten();
    clearInterval(this.timer);
    await this.moving;
    this.stopped = true;
    await this.drain();
  }

  /** Whether a move is under way or asked for (tests wait for it). */
  get busy(): boolean {
    return this.moving !== undefined;
  }

  private async drain(): Promise<void> {
    try {
      while ((await this.move()) === BATCH) {}
    } catch (error) {
      // The rows stay; the next kick or sweep moves them.
      this.log.warn({ err: error }, "could not move queued jobs to graphile-worker yet");
    }
  }

  /** One batch; how many jobs it moved. */
  private async move(): Promise<number> {
    const client = await this.pool.connect();
    let failure: Error | undefined;
    try {
      const results = (await client.query(MOVE)) as unknown as pg.QueryResult[];
      const moved = results.find((result) => result.command === "SELECT");
      return Number(moved?.rows[0]?.n ?? 0);
    } catch (error) {
      failure = error as Error;
      throw error;
    } finally {
      // After a failure the connection may be left inside the aborted transaction: not reused.
      client.release(failure);
    }
  }
}
