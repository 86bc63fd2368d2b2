// PostGraphile v5 serving the same database as Mailroom, for bench/run.ts: production settings
// (no GraphiQL, no watch mode, no explain), authenticated by its lazy JWT preset, with tenant
// isolation left to the row-level security policies of bench/postgraphile/rls.sql.
// Node 20 needs bench/postgraphile/with-resolvers.cjs preloaded (PostGraphile 5 targets Node 22).
import { createSecretKey } from "node:crypto";
import { makePgService } from "postgraphile/adaptors/pg";
import { PostGraphileAmberPreset } from "postgraphile/presets/amber";
import { PgLazyJWTPreset } from "postgraphile/presets/lazy-jwt";

const { DATABASE_URL, PORT, JWT_SECRET_HEX } = process.env;
if (!DATABASE_URL || !PORT || !JWT_SECRET_HEX)
  throw new Error("DATABASE_URL, PORT and JWT_SECRET_HEX are required");

/** @type {GraphileConfig.Preset} */
export const preset = {
  extends: [PostGraphileAmberPreset, PgLazyJWTPreset],
  // PostGraphile hides a relation unless an index starts with exactly its foreign key's columns;
  // ours lead with (org_id, inbox_id) or (org_id, thread_id) rather than the full composite key,
  // which still serves these reads (the EXPLAINs in bench/RESULTS.md), so show every relation.
  disablePlugins: ["PgIndexBehaviorsPlugin"],
  pgServices: [
    makePgService({ connectionString: DATABASE_URL, schemas: ["public"], poolConfig: { max: 20 } }),
  ],
  grafserv: {
    port: Number(PORT),
    host: "127.0.0.1",
    graphiql: false,
    watch: false,
    // A KeyObject, not a string: jsonwebtoken would otherwise re-import the key on every request.
    pgJwtSecret: createSecretKey(Buffer.from(JWT_SECRET_HEX, "hex")),
  },
  grafast: { explain: false },
};
