// GraphiQL served entirely from this server: yoga's page points at a CDN, which an offline or
// locked-down network cannot reach, so its assets come from the @graphql-yoga/graphiql package.
import { readFile } from "node:fs/promises";
import type { ServerResponse } from "node:http";
import { createRequire } from "node:module";
import path from "node:path";
import { type GraphiQLOptions, renderGraphiQL } from "graphql-yoga";

const ASSET_PREFIX = "/graphiql/";
const ASSETS: Record<string, string> = {
  "graphiql.css": "text/css; charset=utf-8",
  "yoga-graphiql.umd.js": "text/javascript; charset=utf-8",
  "monacoeditorwork/editor.worker.bundle.js": "text/javascript; charset=utf-8",
  "monacoeditorwork/json.worker.bundle.js": "text/javascript; charset=utf-8",
  "monacoeditorwork/graphql.worker..bundle.js": "text/javascript; charset=utf-8",
};
const distDir = path.join(
  path.dirname(createRequire(import.meta.url).resolve("@graphql-yoga/graphiql/package.json")),
  "dist",
);

export function renderLocalGraphiQL(options: GraphiQLOptions): string {
  return renderGraphiQL(options)
    .replace(/https:\/\/unpkg\.com\/@graphql-yoga\/graphiql@[^/]+\/dist\//g, ASSET_PREFIX)
    .replace(/<link rel=icon href=https:[^>]+>/, "");
}

/** Serves one of the known GraphiQL assets; false when the path is not one. */
export async function serveGraphiQLAsset(pathname: string, res: ServerResponse): Promise<boolean> {
  if (!pathname.startsWith(ASSET_PREFIX)) return false;
  const name = pathname.slice(ASSET_PREFIX.length);
  const type = ASSETS[name];
  if (!type) {
    res.writeHead(404).end();
    return true;
  }
  const body = await readFile(path.join(distDir, name));
  res.writeHead(200, { "content-type": type, "cache-control": "public, max-age=86400" }).end(body);
  return true;
}
