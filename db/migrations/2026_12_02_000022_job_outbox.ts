// Jobs queued by a writer's transaction wait here, not in graphile-worker's table: graphile-worker's
// add_job sends a NOTIFY, and PostgreSQL serializes the commits of notifying transactions across the
// whole server, one WAL flush at a time. The node moves committed rows into graphile-worker right
// after the commit, many per transaction and one NOTIFY per batch; a sweeper moves what a node that
// died left behind (src/jobs/outbox.ts, docs/architecture.md "Background jobs").
import { type Kysely, sql } from "kysely";

export async function up(db: Kysely<unknown>): Promise<void> {
  // The arguments of graphile_worker.add_jobs, one row per job; id keeps the order they were queued in.
  await sql`
    CREATE TABLE job_outbox (
      id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      task text NOT NULL,
      payload json NOT NULL,
      queue_name text,
      run_at timestamptz,
      max_attempts smallint,
      job_key text
    )`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`DROP TABLE job_outbox`.execute(db);
}
