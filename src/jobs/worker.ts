// Durable background jobs (graphile-worker): runners inside this process, and addJob(), which
// enqueues in the caller's transaction so that a job exists if and only if its data committed.
// Each runner takes only the jobs of its own tasks into slots of its own, so that a slow kind of
// job (a relay that never answers, a webhook endpoint that drips) can fill its own slots only.
import {
  type Job,
  Logger as JobLogger,
  type Runner,
  run,
  runMigrations,
  type TaskList,
} from "graphile-worker";
import { sql } from "kysely";
import type pg from "pg";
import type { Config } from "../config.ts";
import type { Db } from "../db/database.ts";
import type { Logger } from "../logger.ts";

export interface AddJobOptions {
  /** Attempts before graphile-worker gives up (its default: 25). */
  maxAttempts?: number;
  runAt?: Date;
  /** Jobs sharing a queue name run one at a time, in order. */
  queueName?: string;
  /** A second job with the same key replaces a pending one instead of adding another. */
  jobKey?: string;
  /**
   * `unsafe_dedupe`: a second job with the same key adds nothing while the first exists, even
   * running or waiting for a retry (graphile-worker's default replaces a pending one instead).
   */
  jobKeyMode?: "replace" | "preserve_run_at" | "unsafe_dedupe";
}

/**
 * Enqueues `name` with `payload` through graphile-worker's `add_job` inside `trx`: rolled back with
 * the caller's data, and announced to workers (NOTIFY) only when it commits. Payloads carry ids,
 * never message bodies or secrets: the job reads what it needs when it runs.
 */
export async function addJob(
  trx: Db,
  name: string,
  payload: Record<string, unknown>,
  options: AddJobOptions = {},
): Promise<string> {
  const result = await sql<{ id: string }>`
    SELECT (graphile_worker.add_job(
      ${name},
      ${JSON.stringify(payload)}::json,
      queue_name => ${options.queueName ?? null}::text,
      run_at => ${options.runAt ?? null}::timestamptz,
      max_attempts => ${options.maxAttempts ?? null}::int,
      job_key => ${options.jobKey ?? null}::text,
      job_key_mode => ${options.jobKeyMode ?? null}::text
    )).id::text AS id`.execute(trx);
  return result.rows[0]?.id as string;
}

export interface JobTask {
  run: TaskList[string];
  /**
   * The delay before retry number `attempts` (1 after the first failure); undefined keeps
   * graphile-worker's own backoff (e^attempts seconds).
   */
  retryDelayMs?: (attempts: number) => number | undefined;
}

/** A graphile-worker runner: the jobs of `tasks`, `concurrency` at a time, and no other job. */
export interface JobRunner {
  /** For logs. */
  name: string;
  concurrency: number;
  tasks: Record<string, JobTask>;
  /**
   * Recurring jobs of this runner's tasks, as graphile-worker crontab lines. graphile-worker records
   * each run in its own table, so a line runs once per time across every node.
   */
  crontab?: string;
}

export interface JobWorker {
  /** Stops taking jobs and waits for those running to finish. */
  stop(): Promise<void>;
}

/** Installs or upgrades graphile-worker's schema (idempotent; the worker also does it at start). */
export async function migrateJobs(pool: pg.Pool): Promise<void> {
  await runMigrations({ pgPool: pool, logger: new JobLogger(() => () => {}) });
}

/** Starts every runner on `pool`; each fetches only the jobs of its own tasks. */
export async function startWorker(
  pool: pg.Pool,
  config: Pick<Config, "workerPollIntervalMs">,
  runners: readonly JobRunner[],
  logger: Logger,
): Promise<JobWorker> {
  const owners = new Map<string, string>();
  for (const runner of runners) {
    for (const task of Object.keys(runner.tasks)) {
      const owner = owners.get(task);
      // A task in two runners would let its slow jobs take the other runner's slots too.
      if (owner) throw new Error(`job task ${task} is in two runners: ${owner} and ${runner.name}`);
      owners.set(task, runner.name);
    }
  }
  const started: JobWorker[] = [];
  try {
    // One after the other: each installs or checks graphile-worker's schema as it starts.
    for (const runner of runners) {
      if (Object.keys(runner.tasks).length === 0) continue;
      started.push(await supervisedRunner(pool, config, runner, logger));
    }
  } catch (error) {
    await Promise.allSettled(started.map((runner) => runner.stop()));
    throw error;
  }
  let stopped: Promise<void> | undefined;
  return {
    stop() {
      stopped ??= Promise.all(started.map((runner) => runner.stop())).then(() => {});
      return stopped;
    },
  };
}

const RECOVERY_MAX_DELAY_MS = 5_000;

/**
 * A runner that gets its slots back. graphile-worker ends a worker for good when it cannot record
 * the end of its job (the database went away just then) and leaves that job locked for four hours;
 * a runner that lost its workers that way would run nothing again. Here, once the database
 * answers, the lost workers' jobs are unlocked (they run again: every task may run twice) and the
 * runner is replaced by a whole one.
 */
async function supervisedRunner(
  pool: pg.Pool,
  config: Pick<Config, "workerPollIntervalMs">,
  spec: JobRunner,
  logger: Logger,
): Promise<JobWorker> {
  const log = logger.child({ component: "jobs", runner: spec.name });
  /** Workers that ended for good, whose jobs are still to unlock. */
  const lost: string[] = [];
  let stopping = false;
  let wake: () => void = () => {};
  let recovering: Promise<void> | undefined;
  const pause = (ms: number) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms);
      wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  /** Runs `step` until it succeeds, backing off while the database is away; false once stopping. */
  const persist = async (what: string, step: () => Promise<void>): Promise<boolean> => {
    for (let delay = 100; !stopping; delay = Math.min(delay * 2, RECOVERY_MAX_DELAY_MS)) {
      try {
        await step();
        return true;
      } catch (error) {
        log.warn({ err: error }, `could not ${what} yet`);
        await pause(delay);
      }
    }
    return false;
  };

  /** Which runner is current: a worker lost by a runner already being replaced needs no new one. */
  let generation = 0;
  let replace = false;
  /** The runner taking jobs; none between stopping one and starting its replacement. */
  let live: Runner | undefined;
  const start = async () => {
    const mine = ++generation;
    live = await startRunner(pool, config, spec, logger, (workerId) => {
      lost.push(workerId);
      if (mine === generation) replace = true;
      recovering ??= recover().finally(() => {
        recovering = undefined;
      });
    });
  };

  async function recover(): Promise<void> {
    while (replace && !stopping) {
      replace = false;
      log.error("a job worker ended for good: replacing its runner");
      // Its other workers finish what they run (and may be lost in turn, adding to `lost`).
      const old = live;
      live = undefined;
      await old?.stop().catch((error: unknown) => log.warn({ err: error }, "the old runner stopped badly"));
      if (!(await persist("start a new runner", start))) return;
    }
    await persist("unlock the lost workers' jobs", async () => {
      const ids = [...lost];
      await pool.query("SELECT graphile_worker.force_unlock_workers($1::text[])", [ids]);
      lost.splice(0, ids.length);
    });
    log.info("the runner is whole again");
  }

  await start();
  let stopped: Promise<void> | undefined;
  return {
    stop() {
      stopped ??= (async () => {
        stopping = true;
        wake();
        await recovering;
        await live?.stop();
      })();
      return stopped;
    },
  };
}

async function startRunner(
  pool: pg.Pool,
  config: Pick<Config, "workerPollIntervalMs">,
  { name, concurrency, tasks, crontab }: JobRunner,
  logger: Logger,
  onLost: (workerId: string) => void,
): Promise<Runner> {
  const runner: Runner = await run({
    pgPool: pool,
    concurrency,
    pollInterval: config.workerPollIntervalMs,
    // The application owns the process's signals and calls stop() itself.
    noHandleSignals: true,
    logger: jobLogger(logger.child({ runner: name })),
    taskList: Object.fromEntries(Object.entries(tasks).map(([task, job]) => [task, job.run])),
    ...(crontab === undefined ? {} : { crontab }),
  });
  // A failed attempt has just been rescheduled by graphile-worker's fixed backoff; a task with its
  // own schedule moves the retry (if the process dies first, the built-in backoff still holds).
  runner.events.on("job:complete", ({ job, error }: { job: Job; error: unknown }) => {
    if (!error || job.attempts >= job.max_attempts) return;
    const delay = tasks[job.task_identifier]?.retryDelayMs?.(job.attempts);
    if (delay === undefined) return;
    pool
      .query("SELECT graphile_worker.reschedule_jobs(ARRAY[$1::bigint], run_at => $2::timestamptz)", [
        job.id,
        new Date(Date.now() + delay),
      ])
      .catch((err: unknown) => logger.warn({ err, jobId: job.id }, "could not reschedule a job's retry"));
  });
  runner.events.on("worker:fatalError", ({ worker }: { worker: { workerId: string } }) =>
    onLost(worker.workerId),
  );
  return runner;
}

/** graphile-worker's log lines through pino; a failed attempt that will be retried is a warning. */
function jobLogger(logger: Logger): JobLogger {
  const jobs = logger.child({ component: "jobs" });
  return new JobLogger(() => (level: string, message: string, meta?: Record<string, unknown>) => {
    const fields = meta?.job ? { jobId: (meta.job as Job).id, task: (meta.job as Job).task_identifier } : {};
    if (level === "error") {
      const job = meta?.job as Job | undefined;
      if (meta?.failure && job && job.attempts < job.max_attempts) jobs.warn(fields, message);
      else jobs.error(fields, message);
    } else if (level === "warning") jobs.warn(fields, message);
    else if (level === "info") jobs.debug(fields, message);
    else jobs.trace(fields, message);
  });
}
