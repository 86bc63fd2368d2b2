// GraphiQL in a real browser: Debian's Chromium (installed by .ci/run, nothing downloaded at run
// time) driven by playwright-core opens /graphql, authenticates with a pasted Bearer header or a
// session cookie from `login`, runs `{ viewer { scope permissions } }` and shows the result, and runs
// a subscription that shows mail sent over SMTP as it arrives.
import { existsSync } from "node:fs";
import { stat } from "node:fs/promises";
import path from "node:path";
import { type BrowserContext, chromium, type Page } from "playwright-core";
import { beforeAll, describe, expect, it } from "vitest";
import { createInboxViaApi, createKey, createPodViaApi } from "./helpers/factories.ts";
import { smtpTransport } from "./helpers/smtp.ts";
import { organizationFixture, serverSuite, temporaryDirectory } from "./helpers/suite.ts";

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const installed = existsSync(CHROMIUM);
// In CI a missing browser is a failure (beforeAll throws); a developer without it is told and skipped.
const skip = !installed && !process.env.CI;
if (skip)
  console.warn(`No Chromium at ${CHROMIUM} (apt-get install chromium): skipping the GraphiQL browser test.`);

const ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

// (When the browser test is skipped, vitest runs none of the file's hooks.)
beforeAll(() => {
  if (skip) return;
  if (!installed)
    throw new Error(`Chromium is not installed at ${CHROMIUM}: .ci/run installs the chromium package`);
});
const { database, server } = serverSuite({}, { smtpPort: 0 });
const org = organizationFixture(database);
const workDir = temporaryDirectory("mailroom-graphiql-");

/** A browser with a fresh profile of its own; every request it makes is recorded. */
async function openBrowser(
  name: string,
): Promise<{ context: BrowserContext; page: Page; requested: string[] }> {
  const context = await chromium.launchPersistentContext(path.join(workDir.path, `profile-${name}`), {
    executablePath: CHROMIUM,
    headless: true,
    args: ARGS,
    // Tall enough for the whole result: Monaco renders only the lines in view.
    viewport: { width: 1280, height: 1600 },
  });
  const page = context.pages()[0] ?? (await context.newPage());
  const requested: string[] = [];
  page.on("request", (request) => requested.push(request.url()));
  return { context, page, requested };
}

/** Replaces the query editor's text (Monaco) and runs it. */
async function runQuery(page: Page, query: string) {
  await page.locator(".graphiql-query-editor .monaco-editor").click();
  await page.keyboard.press("ControlOrMeta+A");
  await page.keyboard.press("Delete");
  // insertText, not typing: Monaco would auto-close every brace typed.
  await page.keyboard.insertText(query);
  await page.getByRole("button", { name: /Execute query/ }).click();
}

/** The result pane's text once it shows `expected` (Monaco renders only visible lines, with NBSPs). */
async function responseText(page: Page, expected: string): Promise<string> {
  const text = async () => (await page.locator(".graphiql-response").innerText()).replace(/\u00a0/g, " ");
  await expect.poll(text, { timeout: 20_000 }).toContain(expected);
  return text();
}

/**
 * Runs a messageReceived subscription in the page, then mails the inbox over SMTP until the page shows
 * the message (the first mail may arrive before the stream is open), and returns what it shows.
 */
async function subscribeAndReceive(page: Page, inbox: { id: string; email: string }, subject: string) {
  await runQuery(page, `subscription { messageReceived(inboxId: "${inbox.id}") { subject from } }`);
  const transport = smtpTransport(server.smtpPort as number);
  const text = async () => (await page.locator(".graphiql-response").innerText()).replace(/\u00a0/g, " ");
  try {
    const deadline = Date.now() + 20_000;
    while (!(await text()).includes(subject)) {
      if (Date.now() > deadline) throw new Error(`the page never showed "${subject}": ${await text()}`);
      await transport.sendMail({ from: "ann@example.test", to: inbox.email, subject, text: "Hi!" });
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  } finally {
    transport.close();
  }
  return text();
}

describe.skipIf(skip)("GraphiQL in Chromium", () => {
  it("runs a query with a Bearer key pasted into the headers editor", { timeout: 90_000 }, async () => {
    const podId = await createPodViaApi(server, org.apiKey, "Browser pod");
    const key = (
      await createKey(server, org.apiKey, { podId, permissions: { inboxRead: true, metricsRead: true } })
    ).secret;
    const { context, page, requested } = await openBrowser("header");
    try {
      await page.goto(`${server.url}/graphql`);
      await page.getByRole("button", { name: "Headers" }).click();
      await page.locator(".graphiql-editor-tool .monaco-editor").last().click();
      await page.keyboard.insertText(`{"Authorization": "Bearer ${key}"}`);
      await runQuery(page, "{ viewer { scope permissions } }");

      const text = await responseText(page, '"scope": "POD"');
      expect(JSON.parse(text)).toEqual({
        data: { viewer: { scope: "POD", permissions: ["INBOX_READ", "METRICS_READ"] } },
      });

      const screenshot = path.join(workDir.path, "graphiql-header.png");
      await page.screenshot({ path: screenshot });
      expect((await stat(screenshot)).size).toBeGreaterThan(10_000);
      // Everything (page, scripts, styles, workers, the query) came from this server.
      // (A blob: URL's origin is the page's: GraphiQL's editor workers.)
      const origin = new URL(server.url).origin;
      expect(requested.filter((url) => new URL(url).origin !== origin)).toEqual([]);

      // The pasted header carries a subscription too: mail sent over SMTP shows up on the page.
      const inbox = await createInboxViaApi(server, org.apiKey, { podId, username: "graphiql-header" });
      const narrow = (await createKey(server, org.apiKey, { podId, permissions: { messageRead: true } }))
        .secret;
      // The headers editor is still open from the query above.
      await page.locator(".graphiql-editor-tool .monaco-editor").last().click();
      await page.keyboard.press("ControlOrMeta+A");
      await page.keyboard.press("Delete");
      await page.keyboard.insertText(`{"Authorization": "Bearer ${narrow}"}`);
      const shown = await subscribeAndReceive(page, inbox, "Seen by the header");
      expect(shown).toContain('"from": "ann@example.test"');
      expect(shown).not.toContain("errors");
    } finally {
      await context.close();
    }
  });

  it("signs in with the login mutation, then runs the query on the session cookie", {
    timeout: 90_000,
  }, async () => {
    const { context, page } = await openBrowser("cookie");
    try {
      await page.goto(`${server.url}/graphql`);
      await runQuery(
        page,
        `mutation { login(input: { email: "${org.adminEmail}", password: "${org.adminPassword}" }) { user { email role } } }`,
      );
      await responseText(page, '"role": "ADMIN"');
      const cookies = await context.cookies(server.url);
      expect(cookies.find((cookie) => cookie.name === "mailroom_session")).toMatchObject({
        httpOnly: true,
        sameSite: "Lax",
      });

      await runQuery(page, "{ viewer { scope permissions } }");
      const viewer = JSON.parse(await responseText(page, '"scope": "ORGANIZATION"')).data.viewer;
      expect(viewer.permissions).toHaveLength(35);
      expect(viewer.permissions).toContain("API_KEY_CREATE");

      const screenshot = path.join(workDir.path, "graphiql-cookie.png");
      await page.screenshot({ path: screenshot });
      expect((await stat(screenshot)).size).toBeGreaterThan(10_000);

      // The same cookie carries a subscription.
      const inbox = await createInboxViaApi(server, org.apiKey, { username: "graphiql-cookie" });
      const shown = await subscribeAndReceive(page, inbox, "Seen by the cookie");
      expect(shown).toContain('"from": "ann@example.test"');
      expect(shown).not.toContain("errors");
    } finally {
      await context.close();
    }
  });
});
