// The one-command server on the embedded PostgreSQL: first start, restart, crash recovery, the CLI
// next to a running server, a taken port, health endpoints and graceful shutdown.
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { request } from "node:http";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { runCli, runNode, startServerProcess } from "./helpers/process.ts";

const dirs: string[] = [];
async function tempDataDir() {
  const dir = await mkdtemp(path.join(os.tmpdir(), "mailroom-data-"));
  dirs.push(dir);
  return dir;
}

afterAll(async () => {
  for (const dir of dirs) {
    // A test that failed midway may leave a postmaster behind: stop it before removing its files.
    const pid = Number.parseInt(
      (await readFile(path.join(dir, "pg", "postmaster.pid"), "utf8").catch(() => "")).split("\n")[0] ?? "",
      10,
    );
    if (pid > 0) {
      try {
        process.kill(pid, "SIGINT");
      } catch {}
    }
    await rm(dir, { recursive: true, force: true }).catch(() => {});
  }
});

async function graphql(url: string, query: string, key?: string) {
  const response = await fetch(`${url}/graphql`, {
    method: "POST",
    headers: { "content-type": "application/json", ...(key ? { authorization: `Bearer ${key}` } : {}) },
    body: JSON.stringify({ query }),
  });
  return { status: response.status, body: (await response.json()) as any };
}

async function bootstrap(dataDir: string) {
  const result = await runCli(["bootstrap", "--org", "Acme", "--admin-email", "ops@acme.test", "--json"], {
    DATA_DIR: dataDir,
  });
  expect(result.code, result.output).toBe(0);
  const line = result.output.split("\n").find((l) => l.startsWith('{"organizationId"'));
  return JSON.parse(line as string) as { organizationId: string; apiKey: string; adminEmail: string };
}

function pidOf(file: string) {
  return readFile(file, "utf8").then((text) => Number.parseInt(text.split("\n")[0] ?? "", 10));
}

async function waitForExit(pid: number, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      process.kill(pid, 0);
    } catch {
      return;
    }
    if (Date.now() > deadline) throw new Error(`process ${pid} did not exit`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe("the server on the embedded PostgreSQL", () => {
  it("starts on an empty DATA_DIR, serves GraphiQL and health, keeps data across a restart", async () => {
    const dataDir = await tempDataDir();
    const first = await startServerProcess({ DATA_DIR: dataDir });
    console.info(`first start ready after ${first.readyAfterMs} ms`);
    expect((await fetch(`${first.url}/healthz`)).status).toBe(200);
    expect((await fetch(`${first.url}/readyz`)).status).toBe(200);
    const page = await fetch(`${first.url}/graphql`, { headers: { accept: "text/html" } });
    expect(page.status).toBe(200);
    expect(await page.text()).toContain("GraphiQL");

    // The CLI reaches the instance the running server started instead of starting a second one.
    const pgPid = await pidOf(path.join(dataDir, "pg", "postmaster.pid"));
    const { apiKey } = await bootstrap(dataDir);
    expect(await pidOf(path.join(dataDir, "pg", "postmaster.pid"))).toBe(pgPid);
    expect(
      (await graphql(first.url, "{ viewer { organization { name } } }", apiKey)).body.data.viewer.organization
        .name,
    ).toBe("Acme");

    first.child.kill("SIGTERM");
    expect(await first.exited).toBe(0);
    await waitForExit(pgPid);

    const second = await startServerProcess({ DATA_DIR: dataDir });
    console.info(`restart ready after ${second.readyAfterMs} ms`);
    const { body } = await graphql(second.url, "{ viewer { scope organization { name } } }", apiKey);
    expect(body.data.viewer).toEqual({ scope: "ORGANIZATION", organization: { name: "Acme" } });
    second.child.kill("SIGINT");
    expect(await second.exited).toBe(0);
  });

  it("recovers after kill -9 of the server (orphaned database) and of the database too (stale pid file)", async () => {
    const dataDir = await tempDataDir();
    const first = await startServerProcess({ DATA_DIR: dataDir });
    const { apiKey } = await bootstrap(dataDir);
    first.child.kill("SIGKILL");
    await first.exited;

    // The postmaster outlived its owner: the next server adopts it.
    const orphan = await pidOf(path.join(dataDir, "pg", "postmaster.pid"));
    const second = await startServerProcess({ DATA_DIR: dataDir });
    expect((await graphql(second.url, "{ viewer { scope } }", apiKey)).body.data.viewer.scope).toBe(
      "ORGANIZATION",
    );
    second.child.kill("SIGKILL");
    await second.exited;

    // Now the database crashes too, leaving postmaster.pid behind.
    process.kill(orphan, "SIGKILL");
    await waitForExit(orphan);
    const third = await startServerProcess({ DATA_DIR: dataDir });
    expect((await graphql(third.url, "{ viewer { scope } }", apiKey)).body.data.viewer.scope).toBe(
      "ORGANIZATION",
    );
    const thirdPg = await pidOf(path.join(dataDir, "pg", "postmaster.pid"));
    third.child.kill("SIGTERM");
    expect(await third.exited).toBe(0);
    await waitForExit(thirdPg);

    // A stale postmaster.pid naming a live process that is not this cluster's postgres.
    const pidFile = path.join(dataDir, "pg", "postmaster.pid");
    await writeFile(pidFile, `${process.pid}\n${path.join(dataDir, "pg")}\n0\n5432\n\n\n\nready\n`);
    const fourth = await startServerProcess({ DATA_DIR: dataDir });
    expect((await graphql(fourth.url, "{ viewer { scope } }", apiKey)).body.data.viewer.scope).toBe(
      "ORGANIZATION",
    );
    fourth.child.kill("SIGTERM");
    expect(await fourth.exited).toBe(0);
    // Four server starts and two embedded PostgreSQL recoveries: 23 s on an idle machine.
  }, 120_000);

  it("moves to a free port when the recorded one is taken by another program", async () => {
    const dataDir = await tempDataDir();
    const first = await startServerProcess({ DATA_DIR: dataDir });
    first.child.kill("SIGTERM");
    await first.exited;
    const info = JSON.parse(await readFile(path.join(dataDir, "postgres.json"), "utf8")) as { port: number };
    const squatter = net.createServer();
    await new Promise<void>((resolve) => squatter.listen(info.port, "127.0.0.1", resolve));
    try {
      const second = await startServerProcess({ DATA_DIR: dataDir });
      expect((await fetch(`${second.url}/readyz`)).status).toBe(200);
      const moved = JSON.parse(await readFile(path.join(dataDir, "postgres.json"), "utf8")) as {
        port: number;
      };
      expect(moved.port).not.toBe(info.port);
      second.child.kill("SIGTERM");
      expect(await second.exited).toBe(0);
    } finally {
      squatter.close();
    }
  });

  it("finishes a request in flight before it stops", async () => {
    const dataDir = await tempDataDir();
    const server = await startServerProcess({ DATA_DIR: dataDir });
    const { port } = new URL(server.url);
    const body = JSON.stringify({ query: "{ __typename }" });
    // Send the headers and half the body, then ask the server to stop, then send the rest.
    const response = new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = request(
        {
          host: "127.0.0.1",
          port,
          path: "/graphql",
          method: "POST",
          headers: { "content-type": "application/json", "content-length": Buffer.byteLength(body) },
        },
        (res) => {
          let text = "";
          res.on("data", (chunk: Buffer) => {
            text += chunk.toString();
          });
          res.on("end", () => resolve({ status: res.statusCode ?? 0, text }));
        },
      );
      req.on("error", reject);
      req.write(body.slice(0, 10));
      setTimeout(() => {
        server.child.kill("SIGTERM");
        setTimeout(() => req.end(body.slice(10)), 300);
      }, 100);
    });
    const result = await response;
    expect(result.status).toBe(200);
    expect(JSON.parse(result.text)).toEqual({ data: { __typename: "Query" } });
    expect(await server.exited).toBe(0);
    // Stopped for good: readiness is gone and the database stopped with it.
    await expect(fetch(`${server.url}/healthz`)).rejects.toThrow();
  });
});

describe("configuration errors", () => {
  it.each([
    ["PORT", "abc", "expected a whole number from 0 to 65535"],
    ["PORT", "70000", "expected a whole number from 0 to 65535"],
    ["DATABASE_URL", "mysql://x", "expected a URL starting with postgres:// or postgresql://"],
    ["ALLOW_PRIVATE_WEBHOOK_URLS", "maybe", "expected true or false"],
    ["LOG_LEVEL", "loud", "expected one of"],
  ])("%s=%s stops the process with one line naming it", async (name, value, expected) => {
    const run = runNode("src/main.ts", [], { [name]: value });
    const code = await run.exited;
    expect(code).toBe(78);
    const lines = run.output().trim().split("\n");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain(`Invalid configuration: ${name}`);
    expect(lines[0]).toContain(expected);
  });
});
