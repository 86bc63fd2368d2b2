import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { printSchemaSdl, SCHEMA_FILE } from "../src/schema/print.ts";

describe("schema.graphql", () => {
  it("is the schema printed from the code (run `npm run schema` when this fails)", () => {
    expect(readFileSync(SCHEMA_FILE, "utf8")).toBe(printSchemaSdl());
  });
});
