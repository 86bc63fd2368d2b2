// Agent sign-up (docs/permissions.md): the whole flow with the code read from the mail the human gets
// (through the relay: the human is never a mailbox of this service), wrong and expired codes, the
// attempt limit, key rotation, the ceiling and the send allow-list.
import net from "node:net";
import { describe, expect, it } from "vitest";
import { OTP_TTL_MS } from "../src/agents/service.ts";
import { permissionFix } from "../src/auth/permissions.ts";
import { RelaySink } from "./helpers/relay.ts";
import { gql, ok, startTestServer } from "./helpers/server.ts";
import { running, serverSuite } from "./helpers/suite.ts";

/** Where the humans' mail goes: the relay, as it would to any outside address. */
const relay = running(new RelaySink());
// Rate limits off here: the attempt limit under test is the code's own, not the per-key rate limit.
const { database, server } = serverSuite(() => ({
  rateLimitPerMinute: 0,
  smtpRelayUrl: `smtp://127.0.0.1:${relay.port}`,
  workerPollIntervalMs: 100,
}));

const SIGN_UP = `mutation($humanEmail: String!, $username: String!) {
  agentSignUp(input: { humanEmail: $humanEmail, username: $username }) { organizationId inboxId apiKey }
}`;
const VERIFY = "mutation($code: String!) { agentVerify(input: { otpCode: $code }) { verified } }";

let counter = 0;
/** A person outside this service. */
function humanInbox() {
  counter++;
  return { email: `human${counter}@people.example` };
}

/** The codes mailed to a human, newest first, as the human's mail provider received them. */
function codesFor(human: { email: string }): string[] {
  return relay.received
    .filter((m) => m.rcptTo.includes(human.email) && m.mailFrom === "no-reply@mailroom.localhost")
    .map((m) => /verification code: (\d{6})/.exec(m.raw.toString("utf8"))?.[1] as string)
    .reverse();
}

async function signUp(humanEmail: string, username: string) {
  return (await ok(server, SIGN_UP, { humanEmail, username })).agentSignUp as {
    organizationId: string;
    inboxId: string;
    apiKey: string;
  };
}

describe("agent sign-up", () => {
  it("is rate-limited per IP, much more strictly than other calls", async () => {
    const limited = await startTestServer(database.url);
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 7; i++) {
        statuses.push(
          (await gql(limited, SIGN_UP, { humanEmail: `nobody${i}@elsewhere.example`, username: `burst${i}` }))
            .status,
        );
      }
      expect(statuses.slice(0, 5).every((status) => status === 200)).toBe(true);
      expect(statuses.slice(5)).toEqual([429, 429]);
    } finally {
      await limited.stop();
    }
  });

  it("runs the whole flow: unverified ceiling and allow-list, code from the mail, verified", async () => {
    const human = await humanInbox();
    const stranger = await humanInbox();
    const agent = await signUp(human.email, "agent-smith");
    const viewer = (
      await ok(
        server,
        "{ viewer { scope permissions organization { id status } } }",
        {},
        { key: agent.apiKey },
      )
    ).viewer;
    expect(viewer.organization).toEqual({ id: agent.organizationId, status: "AGENT_UNVERIFIED" });
    expect(viewer.permissions).not.toContain("POD_CREATE");
    expect(viewer.permissions).not.toContain("API_KEY_CREATE");
    expect(viewer.permissions).toContain("MESSAGE_SEND");
    const inbox = await ok(
      server,
      "query($id: ID!) { inbox(id: $id) { email } }",
      { id: agent.inboxId },
      { key: agent.apiKey },
    );
    expect(inbox.inbox.email).toBe("agent-smith@mailroom.localhost");

    // The code reached the human, and only the human: not the agent's own mail.
    const [code] = codesFor(human);
    expect(code).toMatch(/^\d{6}$/);
    const agentMail = await ok(server, "{ messages { edges { node { text } } } }", {}, { key: agent.apiKey });
    expect(JSON.stringify(agentMail)).not.toContain(code as string);

    // Before verification it may write only to its human.
    const SEND =
      'mutation($inbox: ID!, $to: [String!]!) { sendMessage(input: { inboxId: $inbox, to: $to, subject: "hi", text: "hello" }) { message { id } } }';
    const refused = await gql(
      server,
      SEND,
      { inbox: agent.inboxId, to: [stranger.email] },
      { key: agent.apiKey },
    );
    expect(refused.body.errors?.[0]?.extensions).toMatchObject({ code: "BAD_USER_INPUT", field: "to" });
    await ok(server, SEND, { inbox: agent.inboxId, to: [human.email] }, { key: agent.apiKey });
    const denied = await gql(
      server,
      'mutation { createPod(input: { name: "x" }) { pod { id } } }',
      {},
      { key: agent.apiKey },
    );
    expect(denied.body.errors?.[0]?.extensions).toEqual({
      code: "FORBIDDEN",
      requiredPermission: "POD_CREATE",
      fix: permissionFix("POD_CREATE"),
    });

    expect((await ok(server, VERIFY, { code }, { key: agent.apiKey })).agentVerify).toEqual({
      verified: true,
    });
    const after = (
      await ok(server, "{ viewer { permissions organization { status } } }", {}, { key: agent.apiKey })
    ).viewer;
    expect(after.organization.status).toBe("AGENT_VERIFIED");
    expect(after.permissions).toHaveLength(35);
    await ok(server, SEND, { inbox: agent.inboxId, to: [stranger.email] }, { key: agent.apiKey });
    await ok(
      server,
      'mutation { createPod(input: { name: "now allowed" }) { pod { id } } }',
      {},
      { key: agent.apiKey },
    );
  });

  it("refuses a wrong code, and the eleventh attempt even with the right one", async () => {
    const human = await humanInbox();
    const agent = await signUp(human.email, "guesser");
    const [code] = codesFor(human);
    const wrong = String((Number(code) + 1) % 1_000_000).padStart(6, "0");
    for (let attempt = 1; attempt <= 10; attempt++) {
      const response = await gql(server, VERIFY, { code: wrong }, { key: agent.apiKey });
      expect(response.body.errors?.[0]?.extensions).toEqual({ code: "BAD_USER_INPUT", field: "otpCode" });
      expect(response.body.errors?.[0]?.message).toContain(`${10 - attempt} attempts left`);
    }
    const eleventh = await gql(server, VERIFY, { code }, { key: agent.apiKey });
    expect(eleventh.body.errors?.[0]?.message).toContain("Too many attempts");
    expect(
      (await ok(server, "{ viewer { organization { status } } }", {}, { key: agent.apiKey })).viewer
        .organization.status,
    ).toBe("AGENT_UNVERIFIED");
  });

  it("refuses an expired code; signing up again then mails a new one", async () => {
    const human = await humanInbox();
    const agent = await signUp(human.email, "sleeper");
    const [first] = codesFor(human);
    server.app.services.clock.advance(OTP_TTL_MS + 1000);
    const expired = await gql(server, VERIFY, { code: first }, { key: agent.apiKey });
    expect(expired.body.errors?.[0]?.message).toContain("expired");
    const again = await signUp(human.email, "sleeper");
    const codes = codesFor(human);
    expect(codes).toHaveLength(2);
    const fresh = codes[0] as string;
    expect((await ok(server, VERIFY, { code: fresh }, { key: again.apiKey })).agentVerify.verified).toBe(
      true,
    );
  });

  it("rotates the key when called again with the same humanEmail, resending no code that is still valid", async () => {
    const human = await humanInbox();
    const first = await signUp(human.email, "rotator");
    const second = await signUp(human.email, "rotator");
    expect(second.organizationId).toBe(first.organizationId);
    expect(second.inboxId).toBe(first.inboxId);
    expect(second.apiKey).not.toBe(first.apiKey);
    expect((await gql(server, "{ viewer { scope } }", {}, { key: first.apiKey })).status).toBe(401);
    await ok(server, "{ viewer { scope } }", {}, { key: second.apiKey });
    expect(codesFor(human)).toHaveLength(1);
    // Once verified, the email no longer hands out keys.
    const [code] = codesFor(human);
    await ok(server, VERIFY, { code }, { key: second.apiKey });
    const third = await gql(server, SIGN_UP, { humanEmail: human.email, username: "rotator" });
    expect(third.body.errors?.[0]?.extensions).toMatchObject({ code: "CONFLICT" });
  });

  it("refuses a username another organization holds, and bad input", async () => {
    const human = await humanInbox();
    await signUp(human.email, "taken-name");
    const other = await humanInbox();
    const taken = await gql(server, SIGN_UP, { humanEmail: other.email, username: "taken-name" });
    expect(taken.body.errors?.[0]?.extensions).toEqual({ code: "CONFLICT", field: "username" });
    const badEmail = await gql(server, SIGN_UP, { humanEmail: "not an email", username: "fine" });
    expect(badEmail.body.errors?.[0]?.extensions).toEqual({ code: "BAD_USER_INPUT", field: "humanEmail" });
    // Refusing outside mail (production without a relay), the code cannot reach anyone: refused before anything is stored.
    const relayless = await startTestServer(database.url, { rateLimitPerMinute: 0, outboundMode: "refuse" });
    const external = await gql(relayless, SIGN_UP, {
      humanEmail: "someone@elsewhere.example",
      username: "lonely",
    }).finally(() => relayless.stop());
    expect(external.body.errors?.[0]?.extensions).toEqual({ code: "BAD_USER_INPUT", field: "humanEmail" });
    const stored = await database.db
      .selectFrom("inboxes")
      .select("id")
      .where("username", "=", "lonely")
      .execute();
    expect(stored).toEqual([]);
  });

  it("answers 503 within the relay's deadline when the relay never greets, and mails a fresh code later", async () => {
    const silent = net.createServer(() => {}); // accepts, never says a word
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
    const port = (silent.address() as net.AddressInfo).port;
    const stuck = await startTestServer(database.url, {
      rateLimitPerMinute: 0,
      smtpRelayUrl: `smtp://127.0.0.1:${port}`,
      relayStepTimeoutMs: 500,
      relayAttemptTimeoutMs: 1000,
    });
    const human = humanInbox();
    try {
      const started = Date.now();
      const response = await gql(stuck, SIGN_UP, { humanEmail: human.email, username: "patient" });
      expect(Date.now() - started).toBeLessThan(5_000);
      expect(response.status).toBe(503);
      expect(response.body.errors?.[0]?.extensions?.code).toBe("SERVICE_UNAVAILABLE");
      expect(response.headers.get("retry-after")).toBe("60");
    } finally {
      await stuck.stop();
      silent.close();
    }
    // The code that could not be mailed expired at once: asking again mails a new one.
    await signUp(human.email, "patient");
    expect(codesFor(human)).toHaveLength(1);
  });
});
