// The embedded PostgreSQL under faults, as `npm start` runs it: a server process with its own DATA_DIR
// whose postmaster this file freezes (SIGSTOP), kills (kill -9), and finally keeps from starting again.
// Only processes this file started are signalled; the suite's shared PostgreSQL is never touched.
import { randomBytes } from "node:crypto";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generateApiKey } from "../src/auth/keys.ts";
import { createDatabase } from "../src/db/database.ts";
import { createInboxViaApi, createOrganization } from "./helpers/factories.ts";
import { type ServerProcess, startServerProcess } from "./helpers/process.ts";
import { gql, ok } from "./helpers/server.ts";
import { wsSubscribe } from "./helpers/subscriptions.ts";

const DATABASE_TIMEOUT_MS = 1000;
const STATEMENT_TIMEOUT_MS = 1500;
/** Scheduling noise on a loaded machine (two cores shared by parallel test files). */
const MARGIN_MS = 1000;

const INBOXES = "{ inboxes(first: 5) { edges { node { id } } } }";

let dataDir: string;
let server: ServerProcess;
let apiKey: string;
/** Processes this file stopped with SIGSTOP and has not resumed yet. */
const frozen = new Set<number>();

beforeAll(async () => {
  dataDir = await mkdtemp(path.join(os.tmpdir(), "mailroom-supervision-"));
  server = await startServerProcess({
    DATA_DIR: dataDir,
    DATABASE_TIMEOUT_MS: String(DATABASE_TIMEOUT_MS),
    STATEMENT_TIMEOUT_MS: String(STATEMENT_TIMEOUT_MS),
  });
  const info = JSON.parse(await readFile(path.join(dataDir, "postgres.json"), "utf8"));
  const handle = createDatabase(
    `postgres://${info.user}:${encodeURIComponent(info.password)}@127.0.0.1:${info.port}/mailroom`,
    { max: 1 },
  );
  try {
    apiKey = (await createOrganization(handle.db, "Supervised")).apiKey;
  } finally {
    await handle.destroy();
  }
});

afterAll(async () => {
  for (const pid of frozen) signal(pid, "SIGCONT");
  if (server && server.child.exitCode === null && server.child.signalCode === null) {
    server.child.kill("SIGTERM");
    const stopped = await Promise.race([server.exited.then(() => true), sleep(15_000).then(() => false)]);
    if (!stopped) {
      server.child.kill("SIGKILL");
      await server.exited;
    }
  }
  // A postmaster the server could not stop (it was killed itself) is still ours to stop.
  const postmaster = await postmasterPid().catch(() => undefined);
  if (postmaster !== undefined && (await cmdline(postmaster)).includes(dataDir)) {
    signal(postmaster, "SIGINT");
    await waitFor(async () => !(await cmdline(postmaster)).includes(dataDir), 15_000).catch(() =>
      signal(postmaster, "SIGKILL"),
    );
  }
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
}, 60_000);

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function signal(pid: number, name: NodeJS.Signals) {
  try {
    process.kill(pid, name);
  } catch {
    // already gone
  }
}

async function waitFor(check: () => Promise<boolean>, withinMs: number): Promise<number> {
  const started = Date.now();
  while (!(await check())) {
    if (Date.now() - started > withinMs) throw new Error(`condition not met within ${withinMs} ms`);
    await sleep(25);
  }
  return Date.now() - started;
}

async function postmasterPid(): Promise<number> {
  const text = await readFile(path.join(dataDir, "pg", "postmaster.pid"), "utf8");
  return Number.parseInt(text.split("\n")[0] ?? "", 10);
}

async function cmdline(pid: number): Promise<string> {
  return (await readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => "")).replaceAll("\0", " ");
}

/** The postmaster's children (backends, checkpointer, …): PostgreSQL puts each in its own process group. */
async function childrenOf(pid: number): Promise<number[]> {
  const children: number[] = [];
  for (const entry of await readdir("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await readFile(`/proc/${entry}/stat`, "utf8").catch(() => "");
    // pid (comm) state ppid …: comm may contain spaces and parentheses, so read after the last ")".
    const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
    if (ppid === pid) children.push(Number(entry));
  }
  return children;
}

async function readyz(): Promise<{ status: number; ms: number }> {
  const started = Date.now();
  const response = await fetch(`${server.url}/readyz`);
  return { status: response.status, ms: Date.now() - started };
}

function expect503(response: Awaited<ReturnType<typeof gql>>) {
  expect(response.status).toBe(503);
  expect(response.headers.get("retry-after")).toMatch(/^[1-9]\d*$/);
  expect(response.body.errors?.map((e) => e.extensions?.code)).toEqual(["SERVICE_UNAVAILABLE"]);
}

describe("the embedded PostgreSQL", () => {
  it("frozen: /readyz and requests answer 503 within their bounds, and all recovers on SIGCONT", async () => {
    expect((await gql(server, INBOXES, {}, { key: apiKey })).status).toBe(200);

    // The whole server freezes, as in a stopped VM: the postmaster first so it forks nothing more.
    const postmaster = await postmasterPid();
    signal(postmaster, "SIGSTOP");
    frozen.add(postmaster);
    for (const child of await childrenOf(postmaster)) {
      signal(child, "SIGSTOP");
      frozen.add(child);
    }
    try {
      const ready = await readyz();
      expect(ready.status).toBe(503);
      expect(ready.ms).toBeLessThan(DATABASE_TIMEOUT_MS + MARGIN_MS);

      const bound = STATEMENT_TIMEOUT_MS + DATABASE_TIMEOUT_MS + MARGIN_MS;
      const started = Date.now();
      const [cached, uncached] = await Promise.all([
        gql(server, INBOXES, {}, { key: apiKey }),
        gql(server, INBOXES, {}, { key: generateApiKey() }),
      ]);
      expect503(cached);
      expect503(uncached);
      expect(Date.now() - started).toBeLessThan(bound);
    } finally {
      for (const pid of frozen) signal(pid, "SIGCONT");
      frozen.clear();
    }

    const recovered = await waitFor(async () => (await readyz()).status === 200, 5_000);
    expect(recovered).toBeLessThan(DATABASE_TIMEOUT_MS + MARGIN_MS);
    expect((await gql(server, INBOXES, {}, { key: apiKey })).status).toBe(200);
  }, 30_000);

  it("killed: is started again, and the pool, LISTEN and the job worker reconnect", async () => {
    const suffix = randomBytes(3).toString("hex");
    const sender = await createInboxViaApi(server, apiKey, { username: `sender-${suffix}` });
    const recipient = await createInboxViaApi(server, apiKey, { username: `recipient-${suffix}` });
    const RECEIVED = "subscription($id: ID) { messageReceived(inboxId: $id) { subject } }";
    // Open before the kill: it survives the outage and misses nothing.
    const before = await wsSubscribe(`${server.url.replace("http", "ws")}/graphql`, apiKey, RECEIVED, {
      id: recipient.id,
    });

    const killed = await postmasterPid();
    signal(killed, "SIGKILL");
    const killedAt = Date.now();
    // Not ready again until a new postmaster runs: a backend orphaned by the kill may still answer
    // for a moment, which must not count.
    await waitFor(async () => (await postmasterPid().catch(() => killed)) !== killed, 20_000);
    await waitFor(async () => (await readyz()).status === 200, 20_000);
    const recoveredMs = Date.now() - killedAt;
    expect(server.output()).toMatch(/the embedded PostgreSQL died; restarting it/);
    // Its log line may still be in the pipe when /readyz already answers.
    await waitFor(async () => /the embedded PostgreSQL is running again/.test(server.output()), 5_000);
    expect(recoveredMs).toBeLessThan(15_000);

    expect((await gql(server, INBOXES, {}, { key: apiKey })).status).toBe(200);
    // A send is stored, delivered by a job, and announced through LISTEN/NOTIFY to the subscribers.
    const after = await wsSubscribe(`${server.url.replace("http", "ws")}/graphql`, apiKey, RECEIVED, {
      id: recipient.id,
    });
    await ok(
      server,
      "mutation($input: SendMessageInput!) { sendMessage(input: $input) { message { id } } }",
      {
        input: { inboxId: sender.id, to: [recipient.email], subject: "after the crash", text: "still here" },
      },
      { key: apiKey },
    );
    expect(await after.waitFor(1, 15_000)).toEqual([{ messageReceived: { subject: "after the crash" } }]);
    expect(await before.waitFor(1, 5_000)).toEqual([{ messageReceived: { subject: "after the crash" } }]);
    await after.dispose();
    await before.dispose();
  }, 60_000);

  it("killed while one of its processes is stuck: keeps trying until that one has gone, then recovers", async () => {
    // A process of the killed postmaster that has not left yet still uses its shared memory, and
    // PostgreSQL refuses to start next to it; that is no reason to give up.
    const postmaster = await postmasterPid();
    const [stuck] = await childrenOf(postmaster);
    expect(stuck).toBeDefined();
    signal(stuck as number, "SIGSTOP");
    frozen.add(stuck as number);
    const outputBefore = server.output().length;
    try {
      signal(postmaster, "SIGKILL");
      await waitFor(async () => /still in use/.test(server.output().slice(outputBefore)), 10_000);
      // Longer than the few attempts a start that failed for any other reason gets.
      await sleep(4_000);
      expect(server.child.exitCode).toBeNull();
      expect((await readyz()).status).toBe(503);
      expect(await postmasterPid().catch(() => postmaster)).toBe(postmaster);
    } finally {
      signal(stuck as number, "SIGCONT");
      frozen.delete(stuck as number);
    }
    // Once it has gone, the postmaster starts again and the server recovers.
    await waitFor(async () => (await readyz()).status === 200, 20_000);
    expect(await postmasterPid()).not.toBe(postmaster);
    expect((await gql(server, INBOXES, {}, { key: apiKey })).status).toBe(200);
  }, 60_000);

  it("cannot be started again: the process exits non-zero with one clear line", async () => {
    const postmaster = await postmasterPid();
    const port = Number((await readFile(path.join(dataDir, "pg", "postmaster.pid"), "utf8")).split("\n")[3]);
    signal(postmaster, "SIGKILL");
    // Another program takes the port the moment it is free: PostgreSQL cannot listen there again.
    const squatter = net.createServer((socket) => socket.destroy());
    await waitFor(
      () =>
        new Promise<boolean>((resolve) => {
          squatter.once("error", () => resolve(false));
          squatter.listen(port, "127.0.0.1", () => resolve(true));
        }),
      5_000,
    );
    try {
      const code = await Promise.race([server.exited, sleep(30_000).then(() => "still running")]);
      if (code !== 1) console.log(server.output().split("\n").slice(-40).join("\n"));
      expect(code).toBe(1);
      const fatal = server
        .output()
        .split("\n")
        .filter((line) => line.includes('"level":60'));
      expect(fatal).toHaveLength(1);
      expect(JSON.parse(fatal[0] as string).msg).toMatch(
        /^The embedded PostgreSQL \(port \d+, .+\) died and could not be restarted: .*FATAL: .+; exiting so that a supervisor starts Mailroom again$/,
      );
    } finally {
      await new Promise((resolve) => squatter.close(resolve));
    }
  }, 60_000);
});
