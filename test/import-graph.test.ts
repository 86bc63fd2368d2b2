// The direction of imports, read from the source (docs/architecture.md, "Layers"): no folder of src/
// imports another that imports it back, the data layer (db/ and every repository) depends on neither
// the GraphQL layer (schema/) nor the server, and schema/ builds no SQL. The linter checks the last two
// per file (biome.json); the folder graph needs the whole tree, so it is checked here.

import { readdirSync, readFileSync } from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";

const SRC = path.resolve(import.meta.dirname, "../src");

interface Graph {
  /** file (relative to the root) → files it imports (relative), and packages it imports. */
  files: Map<string, { local: Set<string>; packages: Set<string>; text: string }>;
}

/** Every .ts file below `root` and what it imports (static imports, `import type`, re-exports, import()). */
function importGraph(root: string): Graph {
  const files: Graph["files"] = new Map();
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (entry.name.endsWith(".ts")) {
        const text = readFileSync(full, "utf8");
        const local = new Set<string>();
        const packages = new Set<string>();
        for (const match of text.matchAll(/(?:\bfrom|\bimport)\s*\(?\s*["']([^"']+)["']/g)) {
          const specifier = match[1] as string;
          if (specifier.startsWith(".")) {
            local.add(path.relative(root, path.resolve(path.dirname(full), specifier)));
          } else packages.add(specifier);
        }
        files.set(path.relative(root, full), { local, packages, text });
      }
    }
  };
  walk(root);
  return { files };
}

/** A file's folder: the top-level folder it is in, or the file itself when it sits at the root. */
function folderOf(file: string): string {
  const [first, ...rest] = file.split(path.sep);
  return rest.length === 0 ? (first as string).replace(/\.ts$/, "") : (first as string);
}

/** The cycles between folders, each as the folders in it and one import per edge that closes it. */
function folderCycles(graph: Graph): string[][] {
  const edges = new Map<string, Map<string, string>>();
  for (const [file, { local }] of graph.files) {
    for (const target of local) {
      const from = folderOf(file);
      const to = folderOf(target);
      if (from === to) continue;
      if (!edges.has(from)) edges.set(from, new Map());
      edges.get(from)?.set(to, `${file} → ${target}`);
    }
  }
  // Tarjan's strongly connected components: every component of more than one folder is a cycle.
  let counter = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const cycles: string[][] = [];
  const visit = (node: string) => {
    index.set(node, counter);
    low.set(node, counter);
    counter++;
    stack.push(node);
    onStack.add(node);
    for (const next of edges.get(node)?.keys() ?? []) {
      if (!index.has(next)) {
        visit(next);
        low.set(node, Math.min(low.get(node) as number, low.get(next) as number));
      } else if (onStack.has(next))
        low.set(node, Math.min(low.get(node) as number, index.get(next) as number));
    }
    if (low.get(node) === index.get(node)) {
      const component: string[] = [];
      let member: string;
      do {
        member = stack.pop() as string;
        onStack.delete(member);
        component.push(member);
      } while (member !== node);
      if (component.length > 1) {
        cycles.push(
          component.flatMap((from) =>
            [...(edges.get(from) ?? [])].filter(([to]) => component.includes(to)).map(([, why]) => why),
          ),
        );
      }
    }
  };
  for (const node of new Set([...edges.keys(), ...[...edges.values()].flatMap((m) => [...m.keys()])])) {
    if (!index.has(node)) visit(node);
  }
  return cycles;
}

const isDataLayer = (file: string) =>
  file.startsWith(`db${path.sep}`) || /(^|[-/])repository\.ts$/.test(file);

/** Imports the data layer must not make: of the GraphQL layer or the server. */
function dataLayerViolations(graph: Graph): string[] {
  const out: string[] = [];
  for (const [file, { local }] of graph.files) {
    if (!isDataLayer(file)) continue;
    for (const target of local) {
      if (["schema", "server"].includes(folderOf(target))) out.push(`${file} → ${target}`);
    }
  }
  return out;
}

/** schema/ files that import kysely or write SQL. */
function sqlInSchema(graph: Graph): string[] {
  return [...graph.files]
    .filter(([file]) => folderOf(file) === "schema")
    .filter(([, { packages, text }]) => packages.has("kysely") || /\bsql`/.test(text))
    .map(([file]) => file);
}

describe("the import graph of src/", () => {
  const graph = importGraph(SRC);

  it("reads the whole tree", () => {
    expect(graph.files.size).toBeGreaterThan(80);
    expect(graph.files.get("app.ts")?.local.size).toBeGreaterThan(5);
  });

  it("has no cycle between folders", () => {
    expect(folderCycles(graph)).toEqual([]);
  });

  it("keeps the data layer (db/ and repositories) free of schema/ and server/", () => {
    expect(dataLayerViolations(graph)).toEqual([]);
  });

  it("keeps SQL out of schema/", () => {
    expect(sqlInSchema(graph)).toEqual([]);
  });
});

describe("the checks themselves", () => {
  it("find a folder cycle, a repository that imports schema/, and SQL in schema/", async () => {
    const root = await mkdtemp(path.join(os.tmpdir(), "mailroom-imports-"));
    try {
      const files: Record<string, string> = {
        "mail/store.ts": 'import { record } from "../events/outbox.ts";\n',
        "events/outbox.ts": 'import { read } from "../mail/store.ts";\n',
        "pods/repository.ts": 'import type { KeysetPage } from "../schema/connection.ts";\n',
        "schema/connection.ts": 'import { sql } from "kysely";\nexport const q = sql`SELECT 1`;\n',
      };
      for (const [file, text] of Object.entries(files)) {
        await mkdir(path.join(root, path.dirname(file)), { recursive: true });
        await writeFile(path.join(root, file), text);
      }
      const probe = importGraph(root);
      expect(folderCycles(probe)).toHaveLength(1);
      expect(folderCycles(probe)[0]?.join(" ")).toContain("mail/store.ts → events/outbox.ts");
      expect(dataLayerViolations(probe)).toEqual(["pods/repository.ts → schema/connection.ts"]);
      expect(sqlInSchema(probe)).toEqual(["schema/connection.ts"]);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});
