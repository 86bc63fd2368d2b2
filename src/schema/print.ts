// `npm run schema`: prints schema.graphql (with @requires on every guarded field) from the code.
import { writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { printSchemaWithDirectives } from "@graphql-tools/utils";
import { lexicographicSortSchema } from "graphql";
import { schema } from "./index.ts";

export const SCHEMA_FILE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../schema.graphql");

export function printSchemaSdl(): string {
  return `${printSchemaWithDirectives(lexicographicSortSchema(schema))}\n`;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  writeFileSync(SCHEMA_FILE, printSchemaSdl());
  console.log(`wrote ${path.relative(process.cwd(), SCHEMA_FILE)}`);
}
