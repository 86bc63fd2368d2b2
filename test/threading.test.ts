// The threading and duplicate rules of src/mail/threading.ts, without a database: which messages of a
// batch are retries, and which thread each of the others joins.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { InboxRef, MessageData, NewMessage } from "../src/mail/message.ts";
import { type Known, type Plan, planCopies } from "../src/mail/threading.ts";

const INBOX_A: InboxRef = { orgId: "1", podId: "1", inboxId: "10" };
const INBOX_B: InboxRef = { orgId: "1", podId: "1", inboxId: "11" };
const NOW = new Date("2026-12-01T12:00:00.000Z");

function message(inbox: InboxRef, overrides: Partial<MessageData> = {}): NewMessage {
  return {
    inbox,
    data: {
      messageIdHeader: `<${Math.random().toString(36).slice(2)}@sender.test>`,
      contentDigest: Buffer.from("digest"),
      from: "ann@sender.test",
      to: ["inbox@mailroom.localhost"],
      subject: "Hello",
      text: "Hi",
      html: null,
      inReplyTo: null,
      references: [],
      labels: ["received", "unread"],
      direction: "INBOUND",
      sizeBytes: 10,
      ...overrides,
    },
  };
}

const nothingKnown = (): Known => ({ duplicates: new Map(), threads: new Map() });
const created = (plan: Plan | undefined) => {
  if (plan?.kind !== "create") throw new Error(`expected a created copy, got ${plan?.kind}`);
  return plan;
};

describe("planCopies", () => {
  it("starts a thread for a message that cites nothing, with its subject", () => {
    const { plans, newThreads, existingThreads } = planCopies([message(INBOX_A)], nothingKnown(), NOW);
    expect(newThreads).toHaveLength(1);
    expect(existingThreads).toEqual([]);
    expect(created(plans[0]).thread).toBe(newThreads[0]);
    expect(newThreads[0]).toMatchObject({ id: undefined, subject: "Hello", inbox: INBOX_A });
  });

  it("stores a repeat of the same Message-ID and digest once: the later is the same as the earlier", () => {
    const first = message(INBOX_A, { messageIdHeader: "<same@x>" });
    const { plans } = planCopies([first, { ...first }], nothingKnown(), NOW);
    expect(plans[0]?.kind).toBe("create");
    expect(plans[1]).toEqual({ kind: "same-as", index: 0 });
  });

  it("stores two different messages that share a Message-ID: their digests differ", () => {
    const a = message(INBOX_A, { messageIdHeader: "<same@x>", contentDigest: Buffer.from("a") });
    const b = message(INBOX_A, { messageIdHeader: "<same@x>", contentDigest: Buffer.from("b") });
    const { plans } = planCopies([a, b], nothingKnown(), NOW);
    expect(plans.map((p) => p.kind)).toEqual(["create", "create"]);
  });

  it("does not store again what the inbox already holds", () => {
    const known = nothingKnown();
    known.duplicates.set(0, { messageId: "500", threadId: "50", labels: ["received"] });
    const { plans, newThreads } = planCopies([message(INBOX_A)], known, NOW);
    expect(plans[0]).toEqual({
      kind: "stored",
      copy: { messageId: "500", threadId: "50", labels: ["received"], created: false },
    });
    expect(newThreads).toEqual([]);
  });

  it("joins the thread of a stored message it replies to, and moves its time forward", () => {
    const known = nothingKnown();
    known.threads.set(0, "77");
    const reply = message(INBOX_A, { inReplyTo: "<earlier@x>", createdAt: NOW });
    const { plans, newThreads, existingThreads } = planCopies([reply], known, NOW);
    expect(newThreads).toEqual([]);
    expect(existingThreads).toEqual([
      { id: "77", inbox: INBOX_A, subject: null, createdAt: NOW, lastMessageAt: NOW },
    ]);
    expect(created(plans[0]).thread).toBe(existingThreads[0]);
  });

  it("prefers the thread of an earlier message of the batch over one stored before", () => {
    const earlier = message(INBOX_A, { messageIdHeader: "<first@x>" });
    const known = nothingKnown();
    known.threads.set(1, "77");
    const reply = message(INBOX_A, { inReplyTo: "<first@x>" });
    const { plans } = planCopies([earlier, reply], known, NOW);
    expect(created(plans[1]).thread).toBe(created(plans[0]).thread);
  });

  it("never threads across inboxes, even when a message cites one in another inbox", () => {
    const earlier = message(INBOX_A, { messageIdHeader: "<first@x>" });
    const reply = message(INBOX_B, { inReplyTo: "<first@x>" });
    const { plans, newThreads } = planCopies([earlier, reply], nothingKnown(), NOW);
    expect(newThreads).toHaveLength(2);
    expect(created(plans[1]).thread).not.toBe(created(plans[0]).thread);
  });

  it("sorts and deduplicates a copy's labels", () => {
    const { plans } = planCopies(
      [message(INBOX_A, { labels: ["unread", "received", "unread"] })],
      nothingKnown(),
      NOW,
    );
    expect(created(plans[0]).labels).toEqual(["received", "unread"]);
  });

  it("gives every created message exactly one thread of its own inbox, and a thread its latest time", () => {
    const ids = ["<a@x>", "<b@x>", "<c@x>", "<d@x>"];
    const arbitraryMessage = fc.record({
      inbox: fc.constantFrom(INBOX_A, INBOX_B),
      id: fc.constantFrom(...ids),
      digest: fc.constantFrom("1", "2"),
      replyTo: fc.option(fc.constantFrom(...ids), { nil: null }),
      minutes: fc.integer({ min: 0, max: 60 }),
    });
    fc.assert(
      fc.property(fc.array(arbitraryMessage, { maxLength: 12 }), (drawn) => {
        const batch = drawn.map((m) =>
          message(m.inbox, {
            messageIdHeader: m.id,
            contentDigest: Buffer.from(m.digest),
            inReplyTo: m.replyTo,
            createdAt: new Date(NOW.getTime() + m.minutes * 60_000),
          }),
        );
        const { plans } = planCopies(batch, nothingKnown(), NOW);
        const seen = new Map<string, number>();
        plans.forEach((plan, i) => {
          const { inbox, data } = batch[i] as NewMessage;
          const key = `${inbox.inboxId}/${data.messageIdHeader}/${data.contentDigest?.toString()}`;
          if (plan.kind === "same-as") {
            // Only a true repeat (same inbox, Message-ID and digest) of an earlier created copy.
            expect(seen.get(key)).toBe(plan.index);
            return;
          }
          expect(plan.kind).toBe("create");
          seen.set(key, i);
          const { thread, createdAt } = created(plan);
          expect(thread.inbox).toBe(inbox);
          expect(thread.lastMessageAt.getTime()).toBeGreaterThanOrEqual(createdAt.getTime());
        });
      }),
    );
  });
});
