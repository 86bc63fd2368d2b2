// graphql-codegen's configuration for the example's typed client, and `npm run examples:codegen`,
// which writes it to examples/generated/. test/example-agent.test.ts generates it afresh into a
// temporary folder and fails when the checked-in copy differs (a schema change that breaks the example).
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import type { CodegenConfig } from "@graphql-codegen/cli";
import { generate } from "@graphql-codegen/cli";

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const GENERATED_DIR = path.join(HERE, "generated");

/** The client preset over the printed schema and the operations in the example's sources. */
export function codegenConfig(outputDir: string): CodegenConfig {
  return {
    schema: path.join(HERE, "..", "schema.graphql"),
    documents: [path.join(HERE, "*.ts"), `!${path.join(HERE, "codegen.ts")}`],
    ignoreNoDocuments: false,
    silent: true,
    generates: {
      [`${outputDir}/`]: {
        preset: "client",
        config: {
          // No graphql-js at run time: each document is its string, typed.
          documentMode: "string",
          useTypeImports: true,
          enumsAsTypes: true,
          scalars: { DateTime: "string", JSON: "unknown" },
        },
        presetConfig: { fragmentMasking: false },
      },
    },
  };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await generate(codegenConfig(GENERATED_DIR), true);
  console.log(`wrote ${path.relative(process.cwd(), GENERATED_DIR)}/`);
}
