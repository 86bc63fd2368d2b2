// The job outbox (src/jobs/outbox.ts): a job queued in a transaction exists iff the transaction
// committed, and runs once, even when the node that committed it died before moving it.
import { sql } from "kysely";
import pino from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { createDatabase } from "../src/db/database.ts";
import { JobOutbox, queueJob } from "../src/jobs/outbox.ts";
import { type JobWorker, startWorker } from "../src/jobs/worker.ts";
import { databaseSuite } from "./helpers/suite.ts";
import { sleep, until } from "./helpers/wait.ts";

const database = databaseSuite();
const logger = pino({ level: "silent" });
const TASK = "outbox-probe";
/** Runs of TASK seen by this process's workers, by the payload's `n`. */
const runs = new Map<number, number>();
const stops: Array<() => Promise<void> | void> = [];

afterEach(async () => {
  for (const stop of stops.splice(0).reverse()) await stop();
  runs.clear();
  await database.pool.query("DELETE FROM job_outbox");
  await database.pool.query(
    "DELETE FROM graphile_worker._private_jobs WHERE task_id IN (SELECT id FROM graphile_worker._private_tasks WHERE identifier = $1)",
    [TASK],
  );
});

async function worker(): Promise<JobWorker> {
  const started = await startWorker(
    database.pool,
    { workerPollIntervalMs: 100 },
    [
      {
        name: "probe",
        concurrency: 4,
        tasks: {
          [TASK]: {
            run: async (payload) => {
              const n = (payload as { n: number }).n;
              runs.set(n, (runs.get(n) ?? 0) + 1);
            },
          },
        },
      },
    ],
    logger,
  );
  stops.push(() => started.stop());
  return started;
}

/** A mover that sweeps only at start unless told otherwise: what moves later was kicked by a commit. */
function mover(pool = database.pool, sweepIntervalMs = 3_600_000): JobOutbox {
  const outbox = new JobOutbox(pool, logger, sweepIntervalMs);
  outbox.start();
  stops.push(() => outbox.stop());
  return outbox;
}

async function outboxRows(): Promise<number> {
  const { rows } = await database.pool.query<{ n: string }>("SELECT count(*) AS n FROM job_outbox");
  return Number(rows[0]?.n);
}

async function queuedJobs(): Promise<number> {
  const { rows } = await database.pool.query<{ n: string }>(
    "SELECT count(*) AS n FROM graphile_worker.jobs WHERE task_identifier = $1",
    [TASK],
  );
  return Number(rows[0]?.n);
}

describe("the job outbox", () => {
  it("never runs a job queued in a transaction that rolled back", async () => {
    await worker();
    mover();
    await expect(
      database.db.transaction().execute(async (trx) => {
        await queueJob(trx, TASK, { n: 1 });
        throw new Error("roll back");
      }),
    ).rejects.toThrow("roll back");
    // A committed job queued after it runs: by then the rolled-back one would have too.
    await database.db.transaction().execute((trx) => queueJob(trx, TASK, { n: 2 }));
    await until(() => runs.get(2) === 1, 10_000);
    await sleep(300);
    expect([...runs]).toEqual([[2, 1]]);
    expect(await outboxRows()).toBe(0);
  });

  it("moves a committed job at once, adds no NOTIFY to the writer's transaction, and runs it once", async () => {
    await worker();
    mover();
    const listener = await database.pool.connect();
    const notices: string[] = [];
    listener.on("notification", (message) => notices.push(message.channel));
    await listener.query('LISTEN "jobs:insert"');
    stops.push(async () => {
      await listener.query('UNLISTEN "jobs:insert"');
      listener.release();
    });
    const before = Date.now();
    await database.db.transaction().execute(async (trx) => {
      for (let n = 10; n < 15; n++) await queueJob(trx, TASK, { n });
      // Not yet a graphile-worker job: nothing to announce inside this transaction.
      expect(await queuedJobs()).toBe(0);
    });
    await until(() => runs.size === 5, 10_000);
    // The commit kicked the mover (its sweep is an hour away).
    expect(Date.now() - before).toBeLessThan(5_000);
    await sleep(300);
    expect([...runs.values()]).toEqual([1, 1, 1, 1, 1]);
    // The move of the five jobs notified once.
    expect(notices.length).toBeGreaterThanOrEqual(1);
    expect(notices.length).toBeLessThanOrEqual(2);
  });

  it("runs once a job whose node died after the commit, before moving it: a node's start moves it", async () => {
    // What a node leaves when it dies right after the commit: the row, and no one told to move it.
    await database.db.transaction().execute((trx) => queueJob(trx, TASK, { n: 20 }));
    await sleep(200);
    expect(await outboxRows()).toBe(1);
    expect(await queuedJobs()).toBe(0);
    await worker();
    mover();
    await until(() => runs.get(20) === 1, 10_000);
    await sleep(300);
    expect([...runs]).toEqual([[20, 1]]);
    expect(await outboxRows()).toBe(0);
  });

  it("sweeps rows no commit announced to this node, and two nodes' movers never move a row twice", async () => {
    const other = createDatabase(database.url, { max: 4 });
    stops.push(() => other.destroy());
    mover(database.pool, 100);
    mover(other.pool, 100);
    // Written without the statement mark, as another node's commit this one never hears of.
    await sql`INSERT INTO job_outbox (task, payload, max_attempts)
      SELECT ${TASK}, json_build_object('n', n), 1 FROM generate_series(1000, 2199) AS n`.execute(
      database.db,
    );
    await until(async () => (await outboxRows()) === 0, 10_000);
    const { rows } = await database.pool.query<{ jobs: string; distinct_n: string }>(
      `SELECT count(*) AS jobs, count(DISTINCT j.payload->>'n') AS distinct_n
       FROM graphile_worker._private_jobs j JOIN graphile_worker._private_tasks t ON t.id = j.task_id
       WHERE t.identifier = $1`,
      [TASK],
    );
    expect(rows[0]).toEqual({ jobs: "1200", distinct_n: "1200" });
  });

  it("keeps the order jobs were queued in, within a queue", async () => {
    mover();
    await database.db.transaction().execute(async (trx) => {
      for (let n = 30; n < 40; n++) await queueJob(trx, TASK, { n }, { queueName: "outbox-probe-queue" });
    });
    await until(async () => (await queuedJobs()) === 10, 10_000);
    const { rows } = await database.pool.query<{ n: number }>(
      `SELECT (j.payload->>'n')::int AS n
       FROM graphile_worker._private_jobs j JOIN graphile_worker._private_tasks t ON t.id = j.task_id
       WHERE t.identifier = $1 ORDER BY j.run_at, j.id`,
      [TASK],
    );
    expect(rows.map((row) => row.n)).toEqual([30, 31, 32, 33, 34, 35, 36, 37, 38, 39]);
  });
});
