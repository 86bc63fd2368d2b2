// Local mail (docs/mail.md): without SMTP_RELAY_URL and outside production, mail to outside
// addresses is captured: settled DELIVERED (a MESSAGE_DELIVERED event), written to the log with its
// text, so that sending and agent sign-up work end to end on a laptop. In production it is refused
// with a typed error, and the start says so.
import { Writable } from "node:stream";
import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../src/config.ts";
import { outboundRoute } from "../src/outbound/capture.ts";
import { gql, ok } from "./helpers/server.ts";
import { databaseSuite, serverOn, serverSuite, tenantFixture } from "./helpers/suite.ts";

function capturingLogger() {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk, _encoding, callback) {
      for (const line of String(chunk).split("\n").filter(Boolean)) lines.push(JSON.parse(line));
      callback();
    },
  });
  return { logger: pino({ level: "info" }, stream), lines };
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

const local = capturingLogger();
const { database, server } = serverSuite(
  { smtpRelayUrl: undefined, production: false },
  { logger: local.logger },
);
const {
  org,
  inboxes: { sender },
} = tenantFixture(
  { database, server },
  { pods: ["A"], inboxes: { sender: { pod: "A", username: "local-sender" } } },
);

// Its own database: its job runners would otherwise take (and refuse) the other server's mail.
const prod = capturingLogger();
const prodDatabase = databaseSuite();
const production = serverOn(
  prodDatabase,
  { smtpRelayUrl: undefined, production: true },
  { logger: prod.logger },
);
const {
  org: prodOrg,
  inboxes: { prodSender },
} = tenantFixture(
  { database: prodDatabase, server: production },
  { pods: ["P"], inboxes: { prodSender: { pod: "P", username: "prod-sender" } } },
);

const SEND = `mutation($input: SendMessageInput!) { sendMessage(input: $input) { message { id } } }`;
const SIGN_UP = `mutation($humanEmail: String!, $username: String!) {
  agentSignUp(input: { humanEmail: $humanEmail, username: $username }) { organizationId inboxId apiKey }
}`;
const VERIFY = "mutation($code: String!) { agentVerify(input: { otpCode: $code }) { verified } }";

describe("choosing the route of outside mail", () => {
  it("captures without a relay outside production, refuses in production, relays with a relay", () => {
    const route = (env: Record<string, string>) => outboundRoute(loadConfig(env));
    expect(route({})).toBe("capture");
    expect(route({ NODE_ENV: "development" })).toBe("capture");
    expect(route({ NODE_ENV: "production" })).toBe("refuse");
    expect(route({ SMTP_RELAY_URL: "smtp://relay.example:25" })).toBe("relay");
    expect(route({ NODE_ENV: "production", OUTBOUND_MODE: "capture" })).toBe("capture");
    expect(route({ SMTP_RELAY_URL: "smtp://relay.example:25", OUTBOUND_MODE: "refuse" })).toBe("refuse");
    expect(() => loadConfig({ OUTBOUND_MODE: "relay" })).toThrow(ConfigError);
    expect(() => loadConfig({ OUTBOUND_MODE: "relay" })).toThrow(/OUTBOUND_MODE relay needs SMTP_RELAY_URL/);
    expect(() => loadConfig({ OUTBOUND_MODE: "smoke" })).toThrow(
      /OUTBOUND_MODE expected one of relay, capture, refuse/,
    );
  });

  it("says at start where outside mail goes", () => {
    expect(local.lines.some((line) => /captured, NOT sent/.test(String(line.msg)))).toBe(true);
    expect(
      prod.lines.some((line) => line.level === 40 && /outside addresses is refused/.test(String(line.msg))),
    ).toBe(true);
  });
});

describe("local mail", () => {
  it("captures mail to an outside address: DELIVERED through the API, and its text in the log", async () => {
    const sent = (
      await ok(
        server,
        SEND,
        {
          input: {
            inboxId: sender.id,
            to: ["Friend <friend@outside.example>"],
            subject: "Hello from a laptop",
            text: "This never leaves the machine.",
          },
        },
        { key: org.apiKey },
      )
    ).sendMessage.message as { id: string };
    const delivered = await until("the MESSAGE_DELIVERED event", async () => {
      const data = await ok(
        server,
        "{ events(types: [MESSAGE_DELIVERED, MESSAGE_BOUNCED]) { edges { node { type message { id } } } } }",
        {},
        { key: org.apiKey },
      );
      const edges = data.events.edges as { node: { type: string; message: { id: string } | null } }[];
      return edges.find((edge) => edge.node.message?.id === sent.id)?.node;
    });
    expect(delivered.type).toBe("MESSAGE_DELIVERED");
    const logged = local.lines.find(
      (line) => line.component === "local-mail" && line.subject === "Hello from a laptop",
    );
    expect(logged).toMatchObject({ to: ["friend@outside.example"], from: sender.email });
    expect(String(logged?.text)).toContain("This never leaves the machine.");
    expect(String(logged?.msg)).toContain("captured, not sent");
  });

  it("completes agentSignUp end to end: the code arrives in the log", async () => {
    const human = "a.human@outside.example";
    const signed = (await ok(server, SIGN_UP, { humanEmail: human, username: "laptop-agent" }))
      .agentSignUp as {
      apiKey: string;
    };
    const line = await until("the captured sign-up code", async () =>
      local.lines.find(
        (entry) => entry.component === "local-mail" && (entry.to as string[])?.includes(human),
      ),
    );
    const code = /verification code is (\d{6})/.exec(String(line.text))?.[1];
    expect(code).toMatch(/^\d{6}$/);
    const verified = await ok(server, VERIFY, { code }, { key: signed.apiKey });
    expect(verified.agentVerify.verified).toBe(true);
  });
});

describe("production without a relay", () => {
  it("refuses mail to outside addresses and agent sign-up with BAD_USER_INPUT, storing nothing", async () => {
    const before = await prodDatabase.db
      .selectFrom("messages")
      .select((eb) => eb.fn.countAll<string>().as("n"))
      .executeTakeFirstOrThrow();
    const refused = await gql(
      production,
      SEND,
      { input: { inboxId: prodSender.id, to: ["friend@outside.example"], subject: "no", text: "no" } },
      { key: prodOrg.apiKey },
    );
    expect(refused.body.errors?.[0]?.extensions?.code).toBe("BAD_USER_INPUT");
    expect(refused.body.errors?.[0]?.message).toMatch(
      /refused on this server \(no SMTP relay is configured\)/,
    );
    const signUp = await gql(production, SIGN_UP, {
      humanEmail: "p.human@outside.example",
      username: "prod-agent",
    });
    expect(signUp.body.errors?.[0]?.extensions).toMatchObject({
      code: "BAD_USER_INPUT",
      field: "humanEmail",
    });
    const after = await prodDatabase.db
      .selectFrom("messages")
      .select((eb) => eb.fn.countAll<string>().as("n"))
      .executeTakeFirstOrThrow();
    expect(after.n).toBe(before.n);
    expect(prod.lines.some((line) => line.component === "local-mail")).toBe(false);
  });
});
