// searchMessages: web-search syntax, ranking, other languages and addresses, attachment filenames,
// highlights (marked and escaped), keyset paging, and every cut: scope, hidden labels, MessageFilter.

import { sql } from "kysely";
import { describe, expect, it } from "vitest";
import { prepareSearch } from "../src/mail/search.ts";
import { searchMessages } from "../src/mail/search-repository.ts";
import { createKey, deliver } from "./helpers/factories.ts";
import { gql, ok } from "./helpers/server.ts";
import { serverSuite, tenantFixture } from "./helpers/suite.ts";
import { podsAandB } from "./helpers/world.ts";

const suite = serverSuite();
const tenant = tenantFixture(suite, podsAandB("search"));
const stranger = tenantFixture(suite, { inboxes: { x: { username: "search-stranger" } } });

const SEARCH = `query($query: String!, $inboxId: ID, $podId: ID, $filter: MessageFilter, $first: Int, $after: String) {
  searchMessages(query: $query, inboxId: $inboxId, podId: $podId, filter: $filter, first: $first, after: $after) {
    edges { cursor rank node { id subject } highlights { field fragments } }
    pageInfo { hasNextPage endCursor }
  }
}`;

interface Edge {
  cursor: string;
  rank: number;
  node: { id: string; subject: string };
  highlights: { field: string; fragments: string[] }[];
}

async function search(query: string, variables: Record<string, unknown> = {}, key = tenant.org.apiKey) {
  const data = await ok(suite.server, SEARCH, { query, ...variables }, { key });
  return data.searchMessages as {
    edges: Edge[];
    pageInfo: { hasNextPage: boolean; endCursor: string | null };
  };
}

const subjects = async (query: string, variables: Record<string, unknown> = {}, key?: string) =>
  (await search(query, variables, key)).edges.map((edge) => edge.node.subject);

const highlightsOf = (edge: Edge | undefined, field: string) =>
  edge?.highlights.find((highlight) => highlight.field === field)?.fragments;

let spamFreeKey: string;

describe("searchMessages", () => {
  it("stores the mail it searches", async () => {
    const { db } = suite.database;
    const a = tenant.inboxes.a.id;
    let minute = 0;
    const mail = (inbox: string, data: Parameters<typeof deliver>[2]) => {
      minute++;
      return deliver(db, inbox, { createdAt: new Date(Date.UTC(2026, 10, 1, 0, minute)), ...data });
    };
    await mail(a, {
      subject: "Quarterly invoice 1042",
      from: "ann.lee@example.com",
      fromName: "Ann Lee",
      text: "Please pay the invoice by Friday.",
    });
    await mail(a, {
      subject: "Lunch plans",
      from: "bob@vendor.test",
      text: "The invoice is attached, and lunch is on me.",
      attachments: [
        { filename: "Rechnung-2026_final.pdf", contentType: "application/pdf", content: Buffer.from("%PDF") },
      ],
    });
    await mail(a, {
      subject: "Grüße aus Köln",
      text: "Die Rechnung für März liegt bei. Übermorgen treffen wir uns.",
    });
    await mail(a, { subject: "Réunion", text: "Le café est prêt. À bientôt, Élodie" });
    await mail(a, { subject: "請求書 送付", text: "請求書 を 添付 します" });
    await mail(a, {
      subject: "<script>alert(1)</script> zebra",
      text: 'AT&T says <b>zebra</b> "quoted" & more',
    });
    await mail(a, {
      subject: "Invoice 9999 zebra WIN",
      from: "spammer@spam.test",
      text: "Click to WIN a zebra.",
      labels: ["received", "spam"],
    });
    await mail(tenant.inboxes.b.id, { subject: "Invoice from pod B", text: "Pay it." });
    await mail(stranger.inboxes.x.id, { subject: "Invoice of another organization zebra", text: "zebra" });
    await mail(a, {
      subject: "Hello",
      text: "Just saying hello.",
      to: ["carol.diaz+billing@acme.test"],
      toNames: ["Carol Diaz"],
    });
    await mail(a, { subject: "Coffee", from: "ann@example.com", fromName: "Ann", text: "Coffee at ten?" });
    await mail(a, { subject: "Whale one", text: "We saw the blue whale swim past." });
    await mail(a, { subject: "Whale two", text: "The whale was not blue at all." });
    for (let i = 1; i <= 7; i++) await mail(a, { subject: `Paging ${i}`, text: "pagetest token" });
    spamFreeKey = (
      await createKey(suite.server, tenant.org.apiKey, {
        name: "no spam",
        permissions: { inboxRead: true, messageRead: true },
      })
    ).secret;
  });

  it("finds a word and ranks a subject match above a body match", async () => {
    const found = await search("invoice");
    const names = found.edges.map((edge) => edge.node.subject);
    expect(names).toContain("Quarterly invoice 1042");
    expect(names).toContain("Lunch plans");
    expect(names.indexOf("Quarterly invoice 1042")).toBeLessThan(names.indexOf("Lunch plans"));
    const ranks = found.edges.map((edge) => edge.rank);
    expect([...ranks].sort((x, y) => y - x)).toEqual(ranks);
  });

  it("understands phrases, or and -word", async () => {
    expect(await subjects('"blue whale"')).toEqual(["Whale one"]);
    expect((await subjects("whale")).sort()).toEqual(["Whale one", "Whale two"]);
    expect((await subjects("café or Übermorgen")).sort()).toEqual(["Grüße aus Köln", "Réunion"]);
    const invoices = await subjects("invoice -lunch");
    expect(invoices).toContain("Quarterly invoice 1042");
    expect(invoices).not.toContain("Lunch plans");
  });

  it("finds a phrase only where its words stand next to each other, in order, within one field", async () => {
    const { db } = suite.database;
    const a = tenant.inboxes.a.id;
    await deliver(db, a, { subject: "Kestrel one", text: "We met at the kestrel harbor master office." });
    await deliver(db, a, { subject: "Kestrel two", text: "The harbor kestrel was loud." });
    await deliver(db, a, { subject: "Kestrel three", text: "A kestrel flew near the harbor." });
    // The subject ends with one word of the phrase and the body begins with the next.
    await deliver(db, a, { subject: "About the kestrel", text: "harbor lights are on." });
    await deliver(db, a, { subject: "Kestrel four", from: "kestrel@harbor.test", text: "harbor master" });
    await deliver(db, a, {
      subject: "Kestrel spam",
      text: "Cheap kestrel harbor tickets.",
      labels: ["received", "spam"],
    });
    expect((await subjects('"kestrel harbor"')).sort()).toEqual(["Kestrel one", "Kestrel spam"]);
    expect(await subjects('"kestrel harbor"', {}, spamFreeKey)).toEqual(["Kestrel one"]);
    expect(await subjects('"harbor kestrel"')).toEqual(["Kestrel two"]);
    expect(await subjects('"kestrel harbor master"')).toEqual(["Kestrel one"]);
    expect(await subjects('"at the kestrel harbor master office"')).toEqual(["Kestrel one"]);
    expect(await subjects('"kestrel harbor master" -office')).toEqual([]);
    expect((await subjects('"harbor master"')).sort()).toEqual(["Kestrel four", "Kestrel one"]);
    expect((await subjects('"kestrel harbor" or "harbor lights"')).sort()).toEqual([
      "About the kestrel",
      "Kestrel one",
      "Kestrel spam",
    ]);
    const [found] = (await search('"kestrel harbor"', {}, spamFreeKey)).edges;
    expect(highlightsOf(found, "TEXT")?.join(" ")).toContain("<mark>kestrel</mark> <mark>harbor</mark>");
    // The phrase asks the pair index for its pairs; an OR of phrases requires none.
    const scope = { orgId: tenant.org.organizationId, podId: null, inboxId: null, hiddenLabels: [] };
    expect((await prepareSearch(db, scope, '"Kestrel harbor master" -"harbor lights"')).pairs).toBe(
      "'kestrel harbor' & 'harbor master'",
    );
    expect((await prepareSearch(db, scope, '"kestrel harbor" or owl')).pairs).toBeNull();
    expect((await prepareSearch(db, scope, "kestrel harbor")).pairs).toBeNull();
  });

  it("stores for every message the pairs of adjacent words that its vector holds, and no others", async () => {
    const { db } = suite.database;
    const { rows } = await sql<{ pairs: string }>`
      SELECT mail_search_pairs(mail_search_vector('Kestrel harbor', 'ann@x.test', 'Ann Lee', '{}', '{}', '{}', '{}',
        NULL, 'Harbor master', NULL))::text AS pairs`.execute(db);
    // Neither "harbor ann" (subject into sender) nor "lee harbor" (sender into body).
    expect(rows[0]?.pairs).toBe(
      "'ann ann' 'ann lee' 'ann x.test' 'ann@x.test ann' 'harbor master' 'kestrel harbor' 'lee ann@x.test' 'x.test x'",
    );
  });

  it("finds the same messages by the index of all matches as by a walk of the newest", async () => {
    const { db } = suite.database;
    const scope = { orgId: tenant.org.organizationId, podId: null, inboxId: null, hiddenLabels: [] };
    for (const text of ['"kestrel harbor"', "invoice", "pagetest", "kestrel -loud"]) {
      const search = await prepareSearch(db, scope, text);
      const page = { after: undefined, limit: 50 };
      const sparse = await searchMessages(db, scope, search, {}, page, 3, "bitmap");
      const walked = await searchMessages(db, scope, search, {}, page, 3, "walk");
      expect(sparse.length).toBeGreaterThan(0);
      expect(walked).toEqual(sparse);
    }
  });

  it("finds words of other languages as written, whatever their case, and marks them", async () => {
    expect(await subjects("übermorgen")).toEqual(["Grüße aus Köln"]);
    const [german] = (await search("ÜBERMORGEN köln")).edges;
    expect(highlightsOf(german, "SUBJECT")).toEqual(["Grüße aus <mark>Köln</mark>"]);
    expect(highlightsOf(german, "TEXT")?.join(" ")).toContain("<mark>Übermorgen</mark>");
    expect(await subjects("Grüße")).toEqual(["Grüße aus Köln"]);
    expect(await subjects("élodie")).toEqual(["Réunion"]);
    expect(await subjects("請求書")).toEqual(["請求書 送付"]);
    // "die" is an English stop word but a German article: it is not dropped.
    expect(await subjects("die")).toEqual(["Grüße aus Köln"]);
  });

  it("finds addresses whole, by local part, by its pieces and by domain", async () => {
    expect(await subjects("ann.lee@example.com")).toEqual(["Quarterly invoice 1042"]);
    expect(await subjects("ann@example.com")).toEqual(["Coffee"]);
    expect(await subjects("ann.lee")).toEqual(["Quarterly invoice 1042"]);
    expect(await subjects("lee")).toEqual(["Quarterly invoice 1042"]);
    expect((await subjects("example.com")).sort()).toEqual(["Coffee", "Quarterly invoice 1042"]);
    expect(await subjects("carol.diaz+billing@acme.test")).toEqual(["Hello"]);
    expect(await subjects("billing")).toEqual(["Hello"]);
    expect(await subjects("acme.test")).toEqual(["Hello"]);
    expect(await subjects('"Carol Diaz"')).toEqual(["Hello"]);
  });

  it("finds attachment filenames whole and by their pieces", async () => {
    expect(await subjects("Rechnung-2026_final.pdf")).toEqual(["Lunch plans"]);
    expect(await subjects("final")).toEqual(["Lunch plans"]);
    const found = await search("rechnung");
    expect(found.edges.map((edge) => edge.node.subject).sort()).toEqual(["Grüße aus Köln", "Lunch plans"]);
    const lunch = found.edges.find((edge) => edge.node.subject === "Lunch plans");
    expect(highlightsOf(lunch, "ATTACHMENT_NAME")).toEqual(["<mark>Rechnung-2026_final.pdf</mark>"]);
  });

  it("marks the words found in each field that holds them, and only those fields", async () => {
    const [edge] = (await search("invoice", { filter: { from: "ann.lee" } })).edges;
    expect(edge?.node.subject).toBe("Quarterly invoice 1042");
    expect(highlightsOf(edge, "SUBJECT")).toEqual(["Quarterly <mark>invoice</mark> 1042"]);
    expect(highlightsOf(edge, "TEXT")).toEqual(["Please pay the <mark>invoice</mark> by Friday"]);
    expect(highlightsOf(edge, "FROM")).toBeUndefined();
    const [byName] = (await search("ann invoice")).edges;
    expect(highlightsOf(byName, "FROM")).toEqual(["<mark>Ann</mark> Lee &lt;ann.lee@example.com&gt;"]);
    const [byPiece] = (await search("ann.lee")).edges;
    expect(highlightsOf(byPiece, "FROM")).toEqual(["Ann Lee &lt;<mark>ann.lee@example.com</mark>&gt;"]);
    const [recipient] = (await search("billing")).edges;
    expect(highlightsOf(recipient, "TO")).toEqual([
      "Carol Diaz &lt;<mark>carol.diaz+billing@acme.test</mark>&gt;",
    ]);
    // An excluded word is not marked.
    const [excluded] = (await search("invoice -lunch -friday", { filter: { from: "ann" } })).edges;
    expect(excluded).toBeUndefined();
  });

  it("escapes the message's text, so only <mark> is markup", async () => {
    const [edge] = (await search("zebra", { inboxId: tenant.inboxes.a.id }, spamFreeKey)).edges;
    expect(edge?.node.subject).toBe("<script>alert(1)</script> zebra");
    expect(highlightsOf(edge, "SUBJECT")).toEqual([
      "&lt;script&gt;alert(1)&lt;/script&gt; <mark>zebra</mark>",
    ]);
    const text = highlightsOf(edge, "TEXT")?.join(" ") ?? "";
    expect(text).toContain("&lt;b&gt;<mark>zebra</mark>&lt;/b&gt;");
    expect(text).toContain("&quot;quoted&quot; &amp; more");
    for (const highlight of edge?.highlights ?? []) {
      for (const fragment of highlight.fragments) {
        expect(fragment.replaceAll("<mark>", "").replaceAll("</mark>", "")).not.toMatch(/[<>"]/);
      }
    }
  });

  it("pages by (rank, id) without gaps or duplicates", async () => {
    const seen: string[] = [];
    let after: string | null = null;
    let pages = 0;
    do {
      const page = await search("pagetest", { first: 2, ...(after ? { after } : {}) });
      seen.push(...page.edges.map((edge) => edge.node.subject));
      after = page.pageInfo.hasNextPage ? page.pageInfo.endCursor : null;
      pages++;
    } while (after && pages < 10);
    expect(pages).toBe(4);
    expect(seen).toHaveLength(7);
    expect(new Set(seen).size).toBe(7);
    // Equal ranks: newest (highest id) first.
    expect(seen).toEqual([
      "Paging 7",
      "Paging 6",
      "Paging 5",
      "Paging 4",
      "Paging 3",
      "Paging 2",
      "Paging 1",
    ]);
  });

  it("ranks the newest matches of a common word, and pages within the set the first page fixed", async () => {
    const { db } = suite.database;
    const scope = { orgId: tenant.org.organizationId, podId: null, inboxId: null, hiddenLabels: [] };
    const search = await prepareSearch(db, scope, "pagetest");
    const first = await searchMessages(db, scope, search, {}, { after: undefined, limit: 2 }, 3);
    expect(first).toHaveLength(2);
    // Mail arriving between pages is not in the set the first page ranked.
    await deliver(db, tenant.inboxes.a.id, { subject: "Paging 8", text: "pagetest token" });
    const last = first.at(-1) as (typeof first)[number];
    const rest = await searchMessages(
      db,
      scope,
      search,
      {},
      { after: [last.rank, last.id, ...last.window], limit: 10 },
      3,
    );
    const subjects = async (ids: string[]) =>
      (
        await sql<{
          subject: string;
        }>`SELECT subject FROM messages WHERE id = ANY(${ids}::bigint[]) ORDER BY id DESC`.execute(db)
      ).rows.map((row) => row.subject);
    expect(await subjects([...first, ...rest].map((hit) => hit.id))).toEqual([
      "Paging 7",
      "Paging 6",
      "Paging 5",
    ]);
  });

  it("cuts by the key's scope, the inboxId and podId arguments, and the organization", async () => {
    const all = await subjects("invoice");
    expect(all).toContain("Invoice from pod B");
    expect(all).not.toContain("Invoice of another organization zebra");
    const inboxKey = await subjects("invoice", {}, tenant.keys.inboxA);
    expect(inboxKey).toContain("Quarterly invoice 1042");
    expect(inboxKey).not.toContain("Invoice from pod B");
    const podKey = await subjects("invoice", {}, tenant.keys.podA);
    expect(podKey).toContain("Quarterly invoice 1042");
    expect(podKey).not.toContain("Invoice from pod B");
    expect(await subjects("invoice", { podId: tenant.pods.B })).toEqual(["Invoice from pod B"]);
    expect(await subjects("invoice", { inboxId: tenant.inboxes.b.id })).toEqual(["Invoice from pod B"]);
    // A pod key asking for another pod's inbox finds nothing there.
    expect(await subjects("invoice", { inboxId: tenant.inboxes.b.id }, tenant.keys.podA)).toEqual([]);
    expect(await subjects("zebra", {}, stranger.org.apiKey)).toEqual([
      "Invoice of another organization zebra",
    ]);
  });

  it("never finds, counts or highlights spam for a key without LABEL_SPAM_READ", async () => {
    expect(await subjects("win")).toEqual(["Invoice 9999 zebra WIN"]);
    expect(await subjects("win", {}, spamFreeKey)).toEqual([]);
    expect(await subjects("spammer@spam.test", {}, spamFreeKey)).toEqual([]);
    const page = await search("zebra", { first: 1 }, spamFreeKey);
    expect(page.edges.map((edge) => edge.node.subject)).toEqual(["<script>alert(1)</script> zebra"]);
    expect(page.pageInfo.hasNextPage).toBe(false);
    expect(JSON.stringify(page)).not.toMatch(/WIN|Click/);
    // Asking for the label hides nothing more and reveals nothing.
    expect(await subjects("zebra", { filter: { labels: ["spam"] } }, spamFreeKey)).toEqual([]);
  });

  it("combines with MessageFilter", async () => {
    expect(await subjects("invoice", { filter: { hasAttachments: true } })).toEqual(["Lunch plans"]);
    expect(await subjects("invoice", { filter: { from: "ann" } })).toEqual(["Quarterly invoice 1042"]);
    expect(await subjects("invoice", { filter: { subject: "lunch" } })).toEqual(["Lunch plans"]);
    expect(await subjects("invoice", { filter: { until: "2026-11-01T00:01:30.000Z" } })).toEqual([
      "Quarterly invoice 1042",
    ]);
    expect(await subjects("invoice", { filter: { labels: ["spam"] } })).toEqual(["Invoice 9999 zebra WIN"]);
  });

  it.each([
    ["", "query"],
    ["   ", "query"],
    ["x".repeat(501), "query"],
    ["!!! ???", "query"],
    ["-lunch", "query"],
    ["a\u0000b", "query"],
  ])("refuses the query %j with BAD_USER_INPUT naming it", async (query, field) => {
    const response = await gql(suite.server, SEARCH, { query }, { key: tenant.org.apiKey });
    expect(response.body.errors?.[0]?.extensions).toMatchObject({ code: "BAD_USER_INPUT", field });
  });

  it("refuses cursors it did not issue and page sizes out of range", async () => {
    for (const after of [
      "nonsense",
      Buffer.from('["1e999","1"]').toString("base64url"),
      Buffer.from('["0.1","x"]').toString("base64url"),
    ]) {
      const response = await gql(
        suite.server,
        SEARCH,
        { query: "invoice", after },
        { key: tenant.org.apiKey },
      );
      expect(response.body.errors?.[0]?.extensions).toMatchObject({ code: "BAD_USER_INPUT", field: "after" });
    }
    const response = await gql(
      suite.server,
      SEARCH,
      { query: "invoice", first: 1000 },
      { key: tenant.org.apiKey },
    );
    expect(response.body.errors?.[0]?.extensions).toMatchObject({ code: "BAD_USER_INPUT", field: "first" });
  });
});
