// GraphiQL is served whole by this server: no asset comes from a CDN.
import { parse, validate } from "graphql";
import { describe, expect, it } from "vitest";
import { schema } from "../src/schema/index.ts";
import { WELCOME_QUERY } from "../src/server/graphiql.ts";
import { serverSuite } from "./helpers/suite.ts";

const { server } = serverSuite();

describe("GraphiQL", () => {
  it("is served at GET /graphql to a browser, with every asset from this server", async () => {
    const page = await fetch(`${server.url}/graphql`, { headers: { accept: "text/html" } });
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(html).toContain("<title>Mailroom</title>");
    expect(html).not.toMatch(/https?:\/\//);
    const assets = [...html.matchAll(/(?:src=|href=|:\s*")(\/graphiql\/[^\s>"]+)/g)].map(
      (m) => m[1] as string,
    );
    expect(assets.length).toBeGreaterThanOrEqual(5);
    for (const asset of assets) {
      const response = await fetch(`${server.url}${asset}`);
      expect(response.status, asset).toBe(200);
      expect((await response.arrayBuffer()).byteLength, asset).toBeGreaterThan(1000);
    }
    expect((await fetch(`${server.url}/graphiql/../package.json`)).status).toBe(404);
  });
});

describe("GraphiQL's first tab and icon", () => {
  it("opens on a Mailroom example that validates against the schema, and says how to authenticate", async () => {
    const html = await (await fetch(`${server.url}/graphql`, { headers: { accept: "text/html" } })).text();
    expect(html).toContain("Headers tab");
    expect(html).toContain('<link rel=icon href="/favicon.ico">');
    const document = parse(WELCOME_QUERY);
    expect(validate(schema, document)).toEqual([]);
    const operations = document.definitions.map((definition) =>
      definition.kind === "OperationDefinition" ? `${definition.operation} ${definition.name?.value}` : "",
    );
    expect(operations).toEqual(["query Viewer", "query Inbox", "subscription WatchMail", "mutation Login"]);
  });

  it("serves /favicon.ico: a 16×16 icon, not a 404", async () => {
    const response = await fetch(`${server.url}/favicon.ico`);
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toBe("image/x-icon");
    const body = Buffer.from(await response.arrayBuffer());
    expect(body.readUInt16LE(2)).toBe(1); // ICO
    expect(body.readUInt16LE(4)).toBe(1);
    expect(body[6]).toBe(16);
    expect(body.length).toBe(22 + 40 + 16 * 16 * 4 + 16 * 4);
  });
});
