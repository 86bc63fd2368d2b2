// Runs `npm start`'s command as a child process, as a user would, and reads its log lines.
import { type ChildProcess, spawn } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

export interface ServerProcess {
  child: ChildProcess;
  url: string;
  output: () => string;
  exited: Promise<number | null>;
}

export function runNode(script: string, args: string[], env: Record<string, string | undefined>) {
  const child = spawn(process.execPath, ["--import", "tsx", path.join(ROOT, script), ...args], {
    cwd: ROOT,
    // MAIL_AUTH off unless asked: tests do not depend on the network's DNS (as testConfig).
    env: { ...process.env, DATABASE_URL: undefined, LOG_LEVEL: "info", MAIL_AUTH: "false", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout?.on("data", (chunk: Buffer) => {
    output += chunk.toString();
  });
  child.stderr?.on("data", (chunk: Buffer) => {
    output += chunk.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  return { child, output: () => output, exited };
}

/** Starts the server and resolves with its URL once it logs that it is ready. */
export async function startServerProcess(env: Record<string, string | undefined>, timeoutMs = 60_000) {
  const run = runNode("src/main.ts", [], { PORT: "0", SMTP_PORT: "0", ...env });
  const started = Date.now();
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setInterval(() => {
      const match = /"url":"(http:\/\/[^"]+)\/graphql"/.exec(run.output());
      if (match?.[1]) {
        clearInterval(timer);
        resolve(match[1]);
      } else if (Date.now() - started > timeoutMs || run.child.exitCode !== null) {
        clearInterval(timer);
        reject(new Error(`server did not become ready:\n${run.output()}`));
      }
    }, 20);
  });
  return { ...run, url, readyAfterMs: Date.now() - started } satisfies ServerProcess & {
    readyAfterMs: number;
  };
}

export async function runCli(args: string[], env: Record<string, string | undefined>) {
  const run = runNode("src/cli.ts", args, env);
  const code = await run.exited;
  return { code, output: run.output() };
}
