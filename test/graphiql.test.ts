// GraphiQL is served whole by this server: no asset comes from a CDN.
import { describe, expect, it } from "vitest";
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
