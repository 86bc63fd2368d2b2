// Statements built once per shape (src/db/shaped.ts): each run carries its own values, never those of
// the run that built the shape; what the shape decides (text, constants) follows the shape.
import { sql } from "kysely";
import { describe, expect, it } from "vitest";
import { type Placeholders, shapedStatement } from "../src/db/shaped.ts";
import { databaseSuite } from "./helpers/suite.ts";

const database = databaseSuite();

interface Shape {
  labels: readonly string[];
  withNote: boolean;
}
interface Values extends Record<string, unknown> {
  id: string;
  note: string | undefined;
}

let builds = 0;
function build(shape: Shape, v: Placeholders<Values>) {
  builds++;
  const note = shape.withNote ? sql`${v.note}::text` : sql`NULL::text`;
  return sql<{ id: string; note: string | null; labels: string[] }>`
    SELECT ${v.id}::bigint::text AS id, ${note} AS note, ${[...shape.labels]}::text[] AS labels`;
}
const statement = shapedStatement(build, ["id", "note"]);

describe("a shaped statement", () => {
  it("is built once per shape, and runs with each run's own values", async () => {
    const shape = { labels: ["spam"], withNote: true };
    const first = await statement(database.db, shape, { id: "1", note: "one" });
    const second = await statement(
      database.db,
      { labels: ["spam"], withNote: true },
      { id: "2", note: "two" },
    );
    expect(builds).toBe(1);
    expect(first.rows).toEqual([{ id: "1", note: "one", labels: ["spam"] }]);
    expect(second.rows).toEqual([{ id: "2", note: "two", labels: ["spam"] }]);
  });

  it("takes what the shape decides from the shape: another shape is another statement", async () => {
    const other = await statement(
      database.db,
      { labels: ["trash", "spam"], withNote: false },
      { id: "3", note: "x" },
    );
    expect(builds).toBe(2);
    expect(other.rows).toEqual([{ id: "3", note: null, labels: ["trash", "spam"] }]);
    const again = await statement(
      database.db,
      { labels: ["spam"], withNote: true },
      { id: "4", note: "four" },
    );
    expect(builds).toBe(2);
    expect(again.rows).toEqual([{ id: "4", note: "four", labels: ["spam"] }]);
  });
});
