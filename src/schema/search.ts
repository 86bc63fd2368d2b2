// Query.searchMessages: full-text search over the mail the caller can see, best first, with the
// words found marked in each field (docs/search.md).
import type { TenantScope } from "../auth/principal.ts";
import { badUserInput } from "../errors.ts";
import type { MessageSummary } from "../mail/repository.ts";
import { prepareSearch } from "../mail/search.ts";
import {
  isSearchKey,
  type SearchHit,
  type SearchKey,
  searchHighlights,
  searchMessages,
} from "../mail/search-repository.ts";
import { builder, requires } from "./builder.ts";
import { type CursorCodec, encodeCursor, keysetConnection } from "./connection.ts";
import { type Context, scopeOf } from "./context.ts";
import { optionalId } from "./global-id.ts";
import { contextLoader } from "./loaders.ts";
import { MessageRef } from "./message.ts";
import { MessageFilterInput, messageFilterOf } from "./message-filter.ts";

const SearchFieldEnum = builder.enumType("SearchField", {
  description: "A part of a message that search looks in.",
  values: {
    SUBJECT: { description: "The subject." },
    TEXT: { description: "The text body (the HTML body's text when there is no text part)." },
    FROM: { description: "The sender: display name and address." },
    TO: { description: "The To and Cc recipients: display names and addresses." },
    ATTACHMENT_NAME: { description: "The attachments' filenames." },
  } as const,
});

type SearchFieldName = "SUBJECT" | "TEXT" | "FROM" | "TO" | "ATTACHMENT_NAME";

const SearchHighlightRef = builder.simpleObject("SearchHighlight", {
  description:
    "Where a field holds words the search looked for: HTML-escaped text with each of them wrapped in " +
    "<mark>…</mark> (no other markup).",
  fields: (t) => ({
    field: t.field({ type: SearchFieldEnum }),
    fragments: t.stringList({
      description:
        "The field's highlighted text: the whole subject, sender or filename, one entry per matching recipient " +
        "or attachment, and up to three passages of the text body.",
    }),
  }),
});

interface SearchEdge {
  node: MessageSummary;
  rank: number;
  anyWord: string;
  scope: TenantScope;
}

const MessageSearchConnection = builder.connectionObject(
  {
    type: MessageRef,
    name: "MessageSearchConnection",
    description: "Messages matching a search, best first.",
  },
  {
    name: "MessageSearchEdge",
    description: "A message found by a search, its rank and where it matched.",
    fields: (t) => ({
      rank: t.float({
        description:
          "How well the message matches: higher is better (subject over people over filenames over text).",
        resolve: (edge) => (edge as unknown as SearchEdge).rank,
      }),
      highlights: t.field({
        type: [SearchHighlightRef],
        description:
          "The fields holding words the search looked for, those words marked. Computed only when selected.",
        resolve: async (edge, _args, context) => {
          const { node, anyWord, scope } = edge as unknown as SearchEdge;
          const loader = contextLoader<string, Awaited<ReturnType<typeof searchHighlights>>>(
            context,
            `searchHighlights:${anyWord}`,
            async (ids) => {
              const found = await searchHighlights(context.services.db, scope, ids, anyWord);
              return ids.map(() => found);
            },
          );
          const found = (await loader.load(node.id)).get(node.id);
          if (!found) return [];
          const highlights: { field: SearchFieldName; fragments: string[] }[] = [];
          const add = (field: SearchFieldName, fragments: readonly (string | null)[]) => {
            const present = fragments.filter((fragment): fragment is string => fragment !== null);
            if (present.length > 0) highlights.push({ field, fragments: present });
          };
          add("SUBJECT", [found.subject]);
          add("TEXT", found.text);
          add("FROM", [found.from]);
          add("TO", found.to);
          add("ATTACHMENT_NAME", found.attachments);
          return highlights;
        },
      }),
    }),
  },
);

/**
 * Search cursors are tagged, so a cursor of another list (whose key may also be two numbers as text)
 * is refused rather than read as a rank.
 */
const SEARCH_CURSOR: CursorCodec<SearchKey> = {
  encode: (key) => encodeCursor(["search", ...key]),
  decode(cursor, field) {
    try {
      const value: unknown = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8"));
      if (Array.isArray(value) && value[0] === "search") {
        const key = value.slice(1);
        if (isSearchKey(key)) return key;
      }
    } catch {
      // refused below
    }
    throw badUserInput(`${field} is not a cursor this list produced.`, field);
  },
};

builder.queryField("searchMessages", (t) =>
  t.field({
    type: MessageSearchConnection,
    ...requires("MESSAGE_READ"),
    description:
      "Full-text search over the messages the caller can see, best first. `query` uses web-search syntax: " +
      '"exact phrase", `or`, `-word` to exclude. It matches the subject, text body, sender and recipients (names, ' +
      "addresses, and pieces of addresses such as ann.lee or example.com) and attachment filenames, in any language " +
      "(words are matched as written, without stemming). Messages carrying a label hidden from the caller are never " +
      "found. Narrow with `inboxId`, `podId` and `filter`.",
    args: {
      query: t.arg.string({ required: true, description: "What to look for: 1 to 500 characters." }),
      inboxId: t.arg.id(),
      podId: t.arg.id(),
      filter: t.arg({ type: MessageFilterInput }),
      first: t.arg.int(),
      after: t.arg.string(),
    },
    resolve: async (_root, args, context: Context) => {
      const scope = scopeOf(context);
      const db = context.services.db;
      const filter = {
        inboxId: optionalId(args.inboxId, "Inbox"),
        podId: optionalId(args.podId, "Pod"),
        message: messageFilterOf(args.filter),
      };
      const search = await prepareSearch(db, scope, args.query);
      const connection = await keysetConnection(
        { first: args.first, after: args.after },
        (hit: SearchHit) => [hit.rank, hit.id, ...hit.window] as SearchKey,
        isSearchKey,
        (page) => searchMessages(db, scope, search, filter, page),
        { cursor: SEARCH_CURSOR },
      );
      // The page's messages in one load; one deleted since it was ranked is left out.
      const loader = MessageRef.getDataloader(context);
      const nodes = await Promise.all(
        connection.edges.map((edge) => loader.load(edge.node.id).catch(() => undefined)),
      );
      const edges = connection.edges.flatMap((edge, i) => {
        const node = nodes[i];
        if (!node) return [];
        const searchEdge: SearchEdge & { cursor: string } = {
          node,
          rank: Number(edge.node.rank),
          anyWord: search.anyWord,
          scope,
          cursor: edge.cursor,
        };
        return [searchEdge];
      });
      return { edges, pageInfo: connection.pageInfo } as never;
    },
  }),
);
