// The MCP endpoint with the SDK's own client, over Streamable HTTP (POST /mcp) and over stdio (the CLI
// spawned against this file's server): the tool list cut to each key's permissions, every tool against
// real data, wait_for_message woken by mail arriving over SMTP, denied and revoked callers.
import { readFileSync } from "node:fs";
import path from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import type { Transport } from "@modelcontextprotocol/sdk/shared/transport.js";
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import { buildSchema, Kind, parse, TypeInfo, visit, visitWithTypeInfo } from "graphql";
import { afterAll, describe, expect, it } from "vitest";
import { permissionFix } from "../src/auth/permissions.ts";
import { mcpToolsMarkdown, replaceToolsSection } from "../src/mcp/docs.ts";
import { buildTools, TOOL_SPECS } from "../src/mcp/tools.ts";
import { schema } from "../src/schema/index.ts";
import { printSchemaSdl } from "../src/schema/print.ts";
import { createKey, deleteKey } from "./helpers/factories.ts";
import { ROOT } from "./helpers/process.ts";
import { smtpTransport } from "./helpers/smtp.ts";
import { serverSuite, tenantFixture } from "./helpers/suite.ts";
import { until } from "./helpers/wait.ts";

const { database, server } = serverSuite({}, { smtpPort: 0 });
const { org, inboxes } = tenantFixture(
  { database, server },
  { inboxes: { a: { username: "mcp-a" }, b: { username: "mcp-b" } } },
);

const ALL_TOOLS = TOOL_SPECS.map((t) => t.name).sort();
const READ_TOOLS = TOOL_SPECS.filter((t) => t.readOnly)
  .map((t) => t.name)
  .sort();

const clients: Client[] = [];
afterAll(async () => {
  for (const client of clients) await client.close().catch(() => {});
});

async function connect(transport: Transport): Promise<Client> {
  const client = new Client({ name: "mailroom-test", version: "1.0.0" });
  await client.connect(transport);
  clients.push(client);
  return client;
}

function httpClient(key: string): Promise<Client> {
  return connect(
    new StreamableHTTPClientTransport(new URL(`${server.url}/mcp`), {
      requestInit: { headers: { Authorization: `Bearer ${key}` } },
    }),
  );
}

function stdioClient(key: string): Promise<Client> {
  return connect(
    new StdioClientTransport({
      command: process.execPath,
      args: [path.join(ROOT, "bin/mailroom.js"), "mcp"],
      env: { ...(process.env as Record<string, string>), MAILROOM_URL: server.url, MAILROOM_API_KEY: key },
      stderr: "pipe",
    }),
  );
}

async function call(client: Client, name: string, args: Record<string, unknown>): Promise<CallToolResult> {
  return (await client.callTool({ name, arguments: args }, undefined, {
    timeout: 150_000,
  })) as CallToolResult;
}

/** A successful call's structured result (the SDK client has checked it against the outputSchema). */
async function structured(client: Client, name: string, args: Record<string, unknown>): Promise<any> {
  const result = await call(client, name, args);
  if (result.isError) throw new Error(`${name} failed: ${JSON.stringify(result.content)}`);
  expect(result.content[0]?.type).toBe("text");
  return result.structuredContent;
}

function text(result: CallToolResult): string {
  return result.content.map((c) => (c.type === "text" ? c.text : "")).join("\n");
}

async function readOnlyInboxKey(inboxId: string): Promise<{ secret: string; id: string }> {
  return createKey(server, org.apiKey, {
    inboxId,
    permissions: { inboxRead: true, threadRead: true, messageRead: true, draftRead: true },
  });
}

async function sendOverSmtp(to: string, subject: string, extra: Record<string, unknown> = {}) {
  const transport = smtpTransport(server.smtpPort as number);
  try {
    await transport.sendMail({
      from: "Alice <alice@sender.test>",
      to,
      subject,
      text: `About ${subject}.`,
      ...extra,
    });
  } finally {
    transport.close();
  }
}

describe("the tool catalog", () => {
  const printed = buildSchema(printSchemaSdl());
  const tools = buildTools(schema);
  const named = (name: string) => {
    const tool = tools.find((t) => t.name === name);
    if (!tool) throw new Error(`no tool ${name}`);
    return tool;
  };

  it("lists each tool's permissions from the @requires of every field its operation selects", () => {
    for (const tool of tools) {
      // Read independently from the printed schema's directives: a guarded field added to a tool's
      // operation whose permission is not in the tool's list fails here.
      const wanted = new Set<string>();
      const typeInfo = new TypeInfo(printed);
      visit(
        parse(tool.document),
        visitWithTypeInfo(typeInfo, {
          Field() {
            const directive = typeInfo
              .getFieldDef()
              ?.astNode?.directives?.find((d) => d.name.value === "requires");
            const value = directive?.arguments?.[0]?.value;
            if (value?.kind === Kind.ENUM) wanted.add(value.value);
          },
        }),
      );
      expect([...tool.permissions].sort(), tool.name).toEqual([...wanted].sort());
    }
  });

  it("picks up a guarded field added to an operation", () => {
    const spec = TOOL_SPECS.find((t) => t.name === "list_inboxes");
    const grown = buildTools(schema).find((t) => t.name === "list_inboxes");
    expect(grown?.permissions).toEqual(["INBOX_READ"]);
    const changed = {
      ...spec,
      document: `query McpListInboxes($first: Int) { inboxes(first: $first) { edges { node { id
        threads(first: 1) { edges { node { id messages(first: 1) { edges { node { id } } } } } } } }
        pageInfo { hasNextPage endCursor } } }`,
    };
    const [tool] = buildToolsFrom([changed as (typeof TOOL_SPECS)[number]]);
    expect(tool?.permissions.sort()).toEqual(["INBOX_READ", "MESSAGE_READ", "THREAD_READ"]);
  });

  it("derives input schemas from the variables (required when non-null) and describes them", () => {
    const send = named("send_message");
    expect(send.inputSchema.required).toEqual(["inboxId", "to"]);
    const properties = send.inputSchema.properties as Record<string, any>;
    expect(properties.to).toMatchObject({ type: "array", items: { type: "string" } });
    expect(properties.to.description).toMatch(/Recipients/);
    const threads = named("list_threads");
    const filter = (threads.inputSchema.properties as Record<string, any>).filter;
    expect(filter.anyOf ?? [filter]).toBeTruthy();
    expect(JSON.stringify(filter)).toContain('"since"');
    const wait = named("wait_for_message");
    expect(Object.keys(wait.inputSchema.properties as object).sort()).toEqual(
      ["filter", "inboxId", "includeExisting", "timeoutSeconds"].sort(),
    );
    expect((wait.inputSchema.properties as Record<string, any>).timeoutSeconds.maximum).toBe(120);
  });

  it("never selects attachment bytes", () => {
    for (const tool of tools) expect(tool.document).not.toContain("contentBase64");
  });

  it("is documented in docs/mcp.md as it stands (npm run mcp-docs rewrites it)", () => {
    const file = readFileSync(path.join(ROOT, "docs/mcp.md"), "utf8");
    expect(replaceToolsSection(file, mcpToolsMarkdown(tools))).toBe(file);
  });
});

function buildToolsFrom(specs: (typeof TOOL_SPECS)[number][]) {
  return buildTools(schema, specs);
}

describe("POST /mcp", () => {
  it("answers 401 without a key, with a malformed or unknown one, and with only a session cookie", async () => {
    const body = JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/list" });
    const headers = { "content-type": "application/json", accept: "application/json, text/event-stream" };
    const extras: Record<string, string>[] = [
      {},
      { authorization: "Bearer nope" },
      { authorization: "Bearer mr_0000000000000000000000000000000000" },
      { cookie: "mailroom_session=whatever" },
    ];
    for (const extra of extras) {
      const response = await fetch(`${server.url}/mcp`, {
        method: "POST",
        headers: { ...headers, ...extra },
        body,
      });
      expect(response.status, JSON.stringify(extra)).toBe(401);
      expect(response.headers.get("www-authenticate")).toMatch(/^Bearer/);
      expect((await response.json()).errors[0].extensions.code).toBe("UNAUTHENTICATED");
    }
  });

  it("carries the rate limit headers and the request id of /graphql", async () => {
    const response = await fetch(`${server.url}/mcp`, {
      method: "POST",
      headers: {
        "x-request-id": "mcp-request-1",
        "content-type": "application/json",
        accept: "application/json, text/event-stream",
        authorization: `Bearer ${org.apiKey}`,
      },
      body: JSON.stringify({
        jsonrpc: "2.0",
        id: 1,
        method: "initialize",
        params: {
          protocolVersion: "2025-06-18",
          capabilities: {},
          clientInfo: { name: "raw", version: "1" },
        },
      }),
    });
    expect(response.status).toBe(200);
    expect(response.headers.get("ratelimit-policy")).toBeTruthy();
    expect(response.headers.get("x-request-id")).toBe("mcp-request-1");
  });

  it("initializes and lists all the tools for an organization key, with input and output schemas", async () => {
    const client = await httpClient(org.apiKey);
    expect(client.getServerVersion()?.name).toBe("mailroom");
    const { tools } = await client.listTools();
    expect(tools.map((t) => t.name).sort()).toEqual(ALL_TOOLS);
    for (const tool of tools) {
      expect(tool.inputSchema.type).toBe("object");
      expect(tool.outputSchema?.type).toBe("object");
    }
  });

  it("lists only the read tools for an inbox read-only key", async () => {
    const key = await readOnlyInboxKey(inboxes.a.id);
    const client = await httpClient(key.secret);
    const { tools } = await client.listTools();
    expect(tools.map((t) => t.name).sort()).toEqual(READ_TOOLS);
  });

  it("refuses a tool the key may not use with its permission and the fix, never 'not found'", async () => {
    const key = await readOnlyInboxKey(inboxes.a.id);
    const client = await httpClient(key.secret);
    const result = await call(client, "send_message", {
      inboxId: inboxes.a.id,
      to: ["x@example.com"],
      text: "hi",
    });
    expect(result.isError).toBe(true);
    expect(text(result)).toContain("MESSAGE_SEND");
    expect(text(result)).toContain("Fix:");
    // The same sentence as GraphQL's extensions.fix.
    expect(text(result)).toContain(permissionFix("MESSAGE_SEND"));
    expect(text(result)).not.toMatch(/not found/i);
  });

  it("reports GraphQL errors as tool errors with their code (a message outside the key's inbox)", async () => {
    const key = await readOnlyInboxKey(inboxes.a.id);
    await sendOverSmtp(inboxes.b.email, "Elsewhere");
    const orgClient = await httpClient(org.apiKey);
    const found = await until(async () => {
      const page = await structured(orgClient, "list_threads", {
        inboxId: inboxes.b.id,
        filter: { subject: "Elsewhere" },
      });
      return page.threads[0];
    });
    const thread = await structured(orgClient, "get_thread", { threadId: found.id });
    const client = await httpClient(key.secret);
    const result = await call(client, "get_message", { messageId: thread.thread.messages[0].id });
    expect(result.isError).toBe(true);
    expect(text(result)).toContain("NOT_FOUND");
  });

  it("names an unknown argument or a missing one as BAD_USER_INPUT", async () => {
    const client = await httpClient(org.apiKey);
    const unknown = await call(client, "list_inboxes", { colour: "red" });
    expect(unknown.isError).toBe(true);
    expect(text(unknown)).toContain("colour");
    const missing = await call(client, "get_message", {});
    expect(missing.isError).toBe(true);
    expect(text(missing)).toContain("messageId");
    const bad = await call(client, "wait_for_message", { inboxId: inboxes.a.id, timeoutSeconds: 121 });
    expect(bad.isError).toBe(true);
    expect(text(bad)).toContain("timeoutSeconds");
  });

  it("refuses a key pinned to other addresses (403), like /graphql", async () => {
    const key = await createKey(server, org.apiKey, { allowedIps: ["192.0.2.1"] });
    const response = await fetch(`${server.url}/mcp`, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        accept: "application/json, text/event-stream",
        authorization: `Bearer ${key.secret}`,
      },
      body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/list" }),
    });
    expect(response.status).toBe(403);
    expect((await response.json()).errors[0].extensions.code).toBe("FORBIDDEN");
  });

  it("sends at most once with an idempotencyKey", async () => {
    const client = await httpClient(org.apiKey);
    const args = {
      inboxId: inboxes.a.id,
      to: [inboxes.b.email],
      subject: "Once",
      text: "Only once.",
      idempotencyKey: "mcp-once-1",
    };
    const first = await structured(client, "send_message", args);
    const again = await structured(client, "send_message", args);
    expect(again.message.id).toBe(first.message.id);
  });

  it("holds an approval-bound key's mail: every sending tool answers APPROVAL_REQUIRED with the draft", async () => {
    const bound = await createKey(server, org.apiKey, { sendRequiresApproval: true });
    const client = await httpClient(bound.secret);
    const subject = `Held ${Date.now()}`;
    const held = await call(client, "send_message", {
      inboxId: inboxes.a.id,
      to: [inboxes.b.email],
      subject,
      text: "Wait for a person.",
    });
    expect(held.isError).toBe(true);
    expect(text(held)).toMatch(/APPROVAL_REQUIRED/);
    const draftId = /Draft: (\S+)/.exec(text(held))?.[1] as string;
    expect(draftId).toBeTruthy();
    const draft = await structured(client, "create_draft", {
      inboxId: inboxes.a.id,
      to: [inboxes.b.email],
      subject,
    });
    const sent = await call(client, "send_draft", { draftId: draft.draft.id });
    expect(sent.isError).toBe(true);
    expect(text(sent)).toMatch(/APPROVAL_REQUIRED/);
    // Nothing left: the recipient's inbox has no message with that subject.
    const reader = await httpClient(org.apiKey);
    const found = await structured(reader, "list_threads", { inboxId: inboxes.b.id, first: 50 });
    expect(JSON.stringify(found)).not.toContain(subject);
  });

  it("refuses a deleted key on its next call", async () => {
    const key = await createKey(server, org.apiKey, {});
    const client = await httpClient(key.secret);
    expect((await structured(client, "list_inboxes", {})).inboxes.length).toBeGreaterThan(0);
    await deleteKey(server, org.apiKey, key.id);
    await expect(call(client, "list_inboxes", {})).rejects.toThrow(/UNAUTHENTICATED/);
  });
});

describe("every tool against real data", () => {
  it("runs all of them in a session over HTTP", async () => {
    const client = await httpClient(org.apiKey);
    const calls = new Set<string>();
    const run = async (name: string, args: Record<string, unknown>) => {
      calls.add(name);
      return structured(client, name, args);
    };

    const listed = await run("list_inboxes", { first: 10 });
    expect(listed.inboxes.map((i: any) => i.email)).toContain(inboxes.a.email);

    const created = await run("create_inbox", { username: "mcp-created", displayName: "Made over MCP" });
    expect(created.inbox.email).toMatch(/^mcp-created@/);

    await sendOverSmtp(inboxes.a.email, "Invoice 42", {
      attachments: [{ filename: "invoice.txt", content: "total: 42", contentType: "text/plain" }],
    });
    const threads = await until(async () => {
      const page = await run("list_threads", { inboxId: inboxes.a.id, filter: { subject: "Invoice 42" } });
      return page.threads.length ? page : undefined;
    });
    expect(threads.threads[0].subject).toBe("Invoice 42");

    const thread = await run("get_thread", { threadId: threads.threads[0].id });
    const received = thread.thread.messages[0];
    expect(received.attachments[0].filename).toBe("invoice.txt");

    const message = await run("get_message", { messageId: received.id });
    expect(message.message.text).toContain("About Invoice 42.");
    expect(message.message.fromAddress).toEqual({ address: "alice@sender.test", name: "Alice" });

    const attachment = await run("get_attachment", {
      messageId: received.id,
      attachmentId: received.attachments[0].id,
    });
    expect(attachment.attachment.contentType).toMatch(/^text\/plain/);
    const download = await fetch(attachment.attachment.downloadUrl);
    expect(await download.text()).toBe("total: 42");

    const found = await until(async () => {
      const page = await run("search_messages", { query: "invoice", inboxId: inboxes.a.id });
      return page.messages.length ? page : undefined;
    });
    expect(found.messages[0].id).toBe(received.id);
    expect(found.messages[0].rank).toBeGreaterThan(0);

    const labelled = await run("update_labels", { messageId: received.id, addLabels: ["billing"] });
    expect(labelled.message.labels).toContain("billing");

    const sent = await run("send_message", {
      inboxId: inboxes.a.id,
      to: [inboxes.b.email],
      subject: "Hello b",
      text: "Sent over MCP.",
    });
    expect(sent.message.labels).toContain("sent");
    const existing = await run("wait_for_message", {
      inboxId: inboxes.b.id,
      filter: { subject: "Hello b" },
      includeExisting: true,
      timeoutSeconds: 5,
    });
    expect(existing.message.subject).toBe("Hello b");
    // Replies go to hosted inboxes here (no relay in this file): b answers a.
    const reply = await run("reply_to_message", { messageId: existing.message.id, text: "Thanks, paid." });
    expect(reply.message.thread.id).toBe(existing.message.thread.id);
    expect(reply.message.subject).toBe("Re: Hello b");

    const forwarded = await run("forward_message", {
      messageId: received.id,
      to: [inboxes.b.email],
      text: "FYI",
    });
    expect(forwarded.message.subject).toMatch(/^Fwd:/);

    const draft = await run("create_draft", {
      inboxId: inboxes.a.id,
      to: [inboxes.b.email],
      subject: "Later",
      text: "d",
    });
    expect(draft.draft.subject).toBe("Later");
    const drafts = await run("list_drafts", { inboxId: inboxes.a.id });
    expect(drafts.drafts.map((d: any) => d.id)).toContain(draft.draft.id);
    const fromDraft = await run("send_draft", { draftId: draft.draft.id });
    expect(fromDraft.message.subject).toBe("Later");

    const missing = TOOL_SPECS.map((t) => t.name).filter((name) => !calls.has(name));
    expect(missing).toEqual([]);
  });

  it("renders text without base64 and with the download link", async () => {
    const client = await httpClient(org.apiKey);
    const threads = await until(async () => {
      const page = await structured(client, "list_threads", {
        inboxId: inboxes.a.id,
        filter: { subject: "Invoice 42" },
      });
      return page.threads.length ? page : undefined;
    });
    const thread = await call(client, "get_thread", { threadId: threads.threads[0].id });
    expect(text(thread)).toContain("downloadUrl: http");
    expect(text(thread)).toContain("subject: Invoice 42");
  });
});

describe("wait_for_message", { timeout: 120_000 }, () => {
  it("returns the first matching message that arrives over SMTP while it waits", async () => {
    const client = await httpClient(org.apiKey);
    const before = server.app.services.events.subscriberCount();
    const waiting = call(client, "wait_for_message", {
      inboxId: inboxes.a.id,
      filter: { subject: "Your code" },
      timeoutSeconds: 60,
    });
    await until(() => server.app.services.events.subscriberCount() > before || undefined, 20_000);
    await sendOverSmtp(inboxes.a.email, "Not this one");
    await sendOverSmtp(inboxes.a.email, "Your code is 123456");
    const result = await waiting;
    expect(result.isError).toBeFalsy();
    expect((result.structuredContent as any).message.subject).toBe("Your code is 123456");
    expect(text(result)).toContain("Your code is 123456");
    // The subscription is released as soon as it answered.
    await until(() => server.app.services.events.subscriberCount() === before || undefined, 10_000);
  });

  it("returns null after the timeout", async () => {
    const client = await httpClient(org.apiKey);
    const started = Date.now();
    const result = await call(client, "wait_for_message", {
      inboxId: inboxes.a.id,
      filter: { subject: "never arrives" },
      timeoutSeconds: 1,
    });
    expect(result.isError).toBeFalsy();
    expect(result.structuredContent).toEqual({ message: null });
    expect(Date.now() - started).toBeLessThan(15_000);
  });

  it("releases its subscription when the client goes away", async () => {
    const before = server.app.services.events.subscriberCount();
    const client = new Client({ name: "leaver", version: "1" });
    await client.connect(
      new StreamableHTTPClientTransport(new URL(`${server.url}/mcp`), {
        requestInit: { headers: { Authorization: `Bearer ${org.apiKey}` } },
      }),
    );
    const controller = new AbortController();
    const waiting = client
      .callTool(
        { name: "wait_for_message", arguments: { inboxId: inboxes.a.id, timeoutSeconds: 120 } },
        undefined,
        { signal: controller.signal, timeout: 150_000 },
      )
      .catch((error: Error) => error);
    await until(() => server.app.services.events.subscriberCount() > before || undefined, 20_000);
    controller.abort();
    await client.close();
    await waiting;
    await until(() => server.app.services.events.subscriberCount() === before || undefined, 10_000);
  });
});

// Each client spawns the CLI through tsx: seconds to start on a loaded machine.
describe("npx mailroom mcp (stdio)", { timeout: 180_000 }, () => {
  it("lists and calls tools through the running server, cut to the key", async () => {
    const client = await stdioClient(org.apiKey);
    const { tools } = await client.listTools();
    expect(tools.map((t) => t.name).sort()).toEqual(ALL_TOOLS);
    const listed = await structured(client, "list_inboxes", {});
    expect(listed.inboxes.map((i: any) => i.email)).toContain(inboxes.a.email);

    const key = await readOnlyInboxKey(inboxes.a.id);
    const reader = await stdioClient(key.secret);
    expect((await reader.listTools()).tools.map((t) => t.name).sort()).toEqual(READ_TOOLS);
    const denied = await call(reader, "create_inbox", { username: "nope" });
    expect(denied.isError).toBe(true);
    expect(text(denied)).toContain("INBOX_CREATE");
  });

  it("waits for mail arriving over SMTP", async () => {
    const client = await stdioClient(org.apiKey);
    const before = server.app.services.events.subscriberCount();
    const waiting = call(client, "wait_for_message", {
      inboxId: inboxes.a.id,
      filter: { from: "stdio-sender" },
      timeoutSeconds: 60,
    });
    await until(() => server.app.services.events.subscriberCount() > before || undefined, 30_000);
    await sendOverSmtp(inboxes.a.email, "Over stdio", { from: "stdio-sender@sender.test" });
    const result = await waiting;
    expect((result.structuredContent as any).message.subject).toBe("Over stdio");
  });

  it("refuses a deleted key on its next call", async () => {
    const key = await createKey(server, org.apiKey, {});
    const client = await stdioClient(key.secret);
    await structured(client, "list_inboxes", {});
    await deleteKey(server, org.apiKey, key.id);
    await expect(call(client, "list_inboxes", {})).rejects.toThrow(/UNAUTHENTICATED/);
  });
});
