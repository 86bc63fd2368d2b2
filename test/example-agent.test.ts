// The example agent (examples/, issue 19 part 8) cannot rot: its typed client is what graphql-codegen
// makes of today's schema.graphql, it typechecks, and run against a real server it answers mail
// received over SMTP with a reply that reaches the sender.
import { spawn } from "node:child_process";
import { readdir, readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import path from "node:path";
import { generate } from "@graphql-codegen/cli";
import { describe, expect, it } from "vitest";
import { codegenConfig, GENERATED_DIR } from "../examples/codegen.ts";
import { createInboxViaApi, createPodViaApi } from "./helpers/factories.ts";
import { ROOT, runNode } from "./helpers/process.ts";
import { RelaySink } from "./helpers/relay.ts";
import { smtpTransport } from "./helpers/smtp.ts";
import { organizationFixture, running, serverSuite, temporaryDirectory } from "./helpers/suite.ts";
import { until } from "./helpers/wait.ts";

const sink = running(new RelaySink());
const { database, server } = serverSuite(
  () => ({ smtpRelayUrl: `smtp://127.0.0.1:${sink.port}`, workerPollIntervalMs: 100 }),
  { smtpPort: 0 },
);
const org = organizationFixture(database);
const scratch = temporaryDirectory("mailroom-codegen-");

async function filesOf(dir: string): Promise<Record<string, string>> {
  const names = (await readdir(dir)).sort();
  return Object.fromEntries(
    await Promise.all(
      names.map(async (name) => [name, await readFile(path.join(dir, name), "utf8")] as const),
    ),
  );
}

function run(command: string, args: string[]): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.stderr.on("data", (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.once("exit", (code) => resolve({ code, output }));
  });
}

describe.concurrent("the example agent", () => {
  it("has the typed client graphql-codegen makes of today's schema (npm run examples:codegen)", async () => {
    await generate(codegenConfig(scratch.path), true);
    const fresh = await filesOf(scratch.path);
    expect(Object.keys(fresh).length).toBeGreaterThan(0);
    // A difference: run `npm run examples:codegen`, and fix the agent if it no longer typechecks.
    expect(await filesOf(GENERATED_DIR)).toEqual(fresh);
  });

  it("typechecks", async () => {
    const tsc = createRequire(import.meta.url).resolve("typescript/bin/tsc");
    const { code, output } = await run(process.execPath, [tsc, "--noEmit", "-p", "examples"]);
    expect(output).toBe("");
    expect(code).toBe(0);
  }, 90_000);

  it("answers mail received over SMTP, and the reply reaches the sender", async () => {
    const podId = await createPodViaApi(server, org.apiKey, "Agents");
    const inbox = await createInboxViaApi(server, org.apiKey, { podId, username: "helpdesk" });
    const agent = runNode("examples/auto-reply-agent.ts", [], {
      MAILROOM_URL: server.url,
      MAILROOM_API_KEY: org.apiKey,
      MAILROOM_INBOX: inbox.email,
    });
    try {
      await until(
        () => agent.output().includes(`watching ${inbox.email}`) || agent.child.exitCode !== null,
        30_000,
      ).catch(() => {});
      expect(agent.output(), agent.output()).toContain(`watching ${inbox.email}`);
      // The subscription is open on the server (not only sent) before the mail goes out.
      await until(
        async () =>
          /mailroom_subscriptions_open\{transport="websocket"\} [1-9]/.test(
            await fetch(`${server.url}/metrics`).then((response) => response.text()),
          ),
        10_000,
      );

      const transport = smtpTransport(server.smtpPort as number);
      await transport.sendMail({
        from: "Alice <alice@outside.test>",
        to: inbox.email,
        subject: "Where is my order?",
        text: "It has not arrived yet.",
        messageId: "<order-question@outside.test>",
      });
      transport.close();

      const reply = await sink.waitFor("alice@outside.test", 20_000);
      const raw = reply.raw.toString("utf8");
      expect(reply.mailFrom).toBe(inbox.email);
      expect(raw).toMatch(/^Subject: Re: Where is my order\?/m);
      expect(raw).toMatch(/^In-Reply-To: <order-question@outside\.test>/m);
      // Quoted-printable: soft line breaks joined.
      expect(raw.replace(/=\r?\n/g, "")).toContain("This is an automatic reply");
      expect(agent.output()).toContain("replied to");
    } finally {
      agent.child.kill("SIGTERM");
      await agent.exited;
    }
  }, 90_000);
});
