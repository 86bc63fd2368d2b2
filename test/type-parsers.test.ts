// src/db/type-parsers.ts reads timestamptz and text[] text itself: it must give exactly what pg's own
// parsers give, for what PostgreSQL writes in any session time zone and for text it never writes.
import fc from "fast-check";
import pg from "pg";
import { afterAll, describe, expect, it } from "vitest";
import { createDatabase, type DatabaseHandle } from "../src/db/database.ts";
import { parseTextArray, parseTimestamptz } from "../src/db/type-parsers.ts";
import { databaseSuite } from "./helpers/suite.ts";

const database = databaseSuite();
const general = pg.types.getTypeParser(1184, "text") as (text: string) => unknown;
let handle: DatabaseHandle | undefined;

afterAll(() => handle?.destroy());

const same = (text: string) => {
  const ours = parseTimestamptz(text);
  const theirs = general(text);
  const value = (v: unknown) => (v instanceof Date ? `date ${v.getTime()}` : String(v));
  expect(value(ours), text).toBe(value(theirs));
};

describe("timestamptz parsing", () => {
  it("reads what PostgreSQL writes, in several time zones and precisions, as pg's parser does", async () => {
    handle ??= createDatabase(database.url, { max: 1 });
    const client = await handle.pool.connect();
    try {
      for (const zone of ["UTC", "Asia/Kolkata", "America/St_Johns", "Europe/Amsterdam"]) {
        await client.query(`SET TIME ZONE '${zone}'`);
        const { rows } = await client.query<{ at: Date; text: string }>(`
          SELECT v AS at, v::text AS text FROM (VALUES
            ('2026-12-01 23:35:07.123456+00'::timestamptz), ('2026-12-01 23:35:07+00'),
            ('2026-12-01 23:35:07.5+00'), ('2026-12-01 23:35:07.000999+00'), ('1970-01-01 00:00:00+00'),
            ('0150-03-01 12:00:00+00'), ('0050-03-01 12:00:00+00'), ('0050-03-01 12:00:00+00 BC'),
            ('12026-01-01 00:00:00+00'), ('infinity'), ('-infinity'), (now()), (clock_timestamp())
          ) t(v)`);
        for (const row of rows) {
          same(row.text);
          // The pool's parser is the one that ran.
          const expected = general(row.text);
          expect(row.at instanceof Date ? row.at.getTime() : row.at).toEqual(
            expected instanceof Date ? expected.getTime() : expected,
          );
        }
      }
    } finally {
      await client.query("RESET TIME ZONE");
      client.release();
    }
  });

  it("agrees with pg's parser on generated and malformed text", () => {
    const two = fc.integer({ min: 0, max: 99 }).map((n) => String(n).padStart(2, "0"));
    const text = fc
      .record({
        year: fc.integer({ min: 0, max: 9999 }).map((n) => String(n).padStart(4, "0")),
        month: two,
        day: two,
        time: fc.tuple(two, two, two).map((t) => t.join(":")),
        fraction: fc.oneof(fc.constant(""), fc.stringMatching(/^\.\d{1,7}$/)),
        zone: fc.oneof(fc.stringMatching(/^[+-]\d{2}(:\d{2}(:\d{2})?)?$/), fc.constant("Z"), fc.constant("")),
      })
      .map((p) => `${p.year}-${p.month}-${p.day} ${p.time}${p.fraction}${p.zone}`);
    fc.assert(fc.property(text, same), { numRuns: 5_000 });
    fc.assert(fc.property(fc.string({ maxLength: 40 }), same), { numRuns: 2_000 });
  });

  it("reads text arrays as pg's parser does, the empty one included", async () => {
    handle ??= createDatabase(database.url, { max: 1 });
    const { rows } = await handle.pool.query<{ empty: string[]; some: string[]; nulls: (string | null)[] }>(
      `SELECT '{}'::text[] AS empty, ARRAY['a', 'b c', '{}', ''] AS some, ARRAY[NULL, 'x'] AS nulls`,
    );
    expect(rows[0]).toEqual({ empty: [], some: ["a", "b c", "{}", ""], nulls: [null, "x"] });
    const first = parseTextArray("{}") as string[];
    first.push("mutated");
    // Each row gets its own array: one row's list changed by its reader is not another's.
    expect(parseTextArray("{}")).toEqual([]);
    const general = (pg.types.getTypeParser as (oid: number) => (text: string) => unknown)(1009);
    for (const text of ['{a,"b c",NULL}', "{}", '{"{}"}', "{{a},{b}}"])
      expect(parseTextArray(text)).toEqual(general(text));
  });
});
