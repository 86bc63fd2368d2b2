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
    .replace(/<link rel=icon href=https:[^>]+>/, '<link rel=icon href="/favicon.ico">');
}

/**
 * GraphiQL's first tab: how to authenticate, and a Mailroom example of each kind (test/graphiql.test.ts
 * validates it against the schema, so it cannot rot).
 */
export const WELCOME_QUERY = `# Welcome to Mailroom's GraphiQL.
#
# Authenticate first, either way:
#  - an API key: open the Headers tab below and paste
#      {"Authorization": "Bearer mr_..."}
#    (\`npm run cli -- bootstrap --org Acme --admin-email you@example.com\` prints one);
#  - or sign in (an HttpOnly session cookie, sent from then on) by running Login below.
#
# Then run an operation with the play button's menu. Permissions: each field's
# documentation shows the @requires(permission: ...) it needs (see the Docs pane).
# Subscriptions run over SSE and carry the Headers tab and the cookie alike:
# start WatchMail, then send mail to one of your inboxes (SMTP port 2525).

query Viewer {
  viewer {
    scope
    permissions
    organization { name }
  }
}

query Inbox {
  inboxes(first: 5) {
    edges {
      node {
        email
        messages(first: 10) {
          edges { node { id from subject preview createdAt } }
          pageInfo { hasNextPage endCursor }
        }
      }
    }
  }
}

subscription WatchMail {
  events(types: [MESSAGE_RECEIVED]) {
    type
    createdAt
    message { from subject preview }
  }
}

mutation Login {
  login(input: { email: "you@example.com", password: "your password" }) {
    user { email role }
  }
}
`;

/** A 16×16 icon (an envelope), built once: /favicon.ico. */
export const FAVICON = buildFavicon();

function buildFavicon(): Buffer {
  const size = 16;
  const pixels = Buffer.alloc(size * size * 4);
  for (let row = 0; row < size; row++) {
    for (let x = 0; x < size; x++) {
      // Rows are stored bottom-up; y counts from the top.
      const y = size - 1 - row;
      const inside = y >= 3 && y <= 12 && x >= 1 && x <= 14;
      const border = inside && (y === 3 || y === 12 || x === 1 || x === 14);
      // The flap: a V from the top corners to the middle.
      const flap = inside && Math.abs(x - 7.5) - 0.5 + y === 9;
      const offset = (row * size + x) * 4;
      if (!inside) continue; // transparent
      const white = border || flap;
      pixels.writeUInt8(white ? 0xff : 0xc0, offset); // blue
      pixels.writeUInt8(white ? 0xff : 0x5a, offset + 1); // green
      pixels.writeUInt8(white ? 0xff : 0x1e, offset + 2); // red
      pixels.writeUInt8(0xff, offset + 3); // alpha
    }
  }
  const mask = Buffer.alloc(size * 4); // AND mask: all 0, the alpha channel decides
  const header = Buffer.alloc(40);
  header.writeUInt32LE(40, 0);
  header.writeInt32LE(size, 4);
  header.writeInt32LE(size * 2, 8); // colour and mask, stacked
  header.writeUInt16LE(1, 12);
  header.writeUInt16LE(32, 14);
  header.writeUInt32LE(pixels.length + mask.length, 20);
  const image = Buffer.concat([header, pixels, mask]);
  const directory = Buffer.alloc(22);
  directory.writeUInt16LE(0, 0);
  directory.writeUInt16LE(1, 2); // an icon
  directory.writeUInt16LE(1, 4); // one image
  directory.writeUInt8(size, 6);
  directory.writeUInt8(size, 7);
  directory.writeUInt16LE(1, 10); // planes
  directory.writeUInt16LE(32, 12); // bits per pixel
  directory.writeUInt32LE(image.length, 14);
  directory.writeUInt32LE(22, 18);
  return Buffer.concat([directory, image]);
}

/** GET /favicon.ico. */
export function serveFavicon(res: ServerResponse): void {
  res
    .writeHead(200, { "content-type": "image/x-icon", "cache-control": "public, max-age=86400" })
    .end(FAVICON);
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
