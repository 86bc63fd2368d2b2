// The MCP tools (docs/mcp.md): each one GraphQL operation, run through the server's own pipeline, with
// its input and output JSON Schemas and its permissions derived from that operation against the
// schema (operation.ts). A tool is defined here once; the HTTP endpoint, the stdio bridge, docs/mcp.md
// and the tests all read this list.
import { type DocumentNode, type GraphQLSchema, parse } from "graphql";
import type { Permission } from "../auth/permissions.ts";
import { dataSchema, type JsonSchema, requiredPermissions, schemaAt, variablesSchema } from "./operation.ts";

export type ToolArgs = Record<string, unknown>;
// biome-ignore lint/suspicious/noExplicitAny: GraphQL data, shaped by each operation
export type Data = Record<string, any>;

export interface ToolSpec {
  name: string;
  title: string;
  description: string;
  /** The GraphQL document: its first operation is what the tool runs (wait_for_message: see there). */
  document: string;
  /** The structured result from the operation's data (default: the data as it is). */
  result?: (data: Data, args: ToolArgs) => Data;
  /** The output schema from the data's schema, when `result` reshapes the data. */
  output?: (data: JsonSchema) => JsonSchema;
  /** Input properties that are not variables of the operation (used by the tool itself). */
  extraInput?: Record<string, JsonSchema>;
  /** Variables the tool sets itself, left out of its input schema. */
  hiddenVariables?: string[];
  /** Which of extraInput are required. */
  extraRequired?: string[];
  /** True when the tool only reads (MCP's readOnlyHint). */
  readOnly: boolean;
}

export interface Tool extends ToolSpec {
  parsed: DocumentNode;
  permissions: Permission[];
  inputSchema: JsonSchema;
  outputSchema: JsonSchema;
}

const PAGE = `pageInfo { hasNextPage endCursor }`;
const ADDRESS = `address name`;
/** What a list shows of a message. */
const MESSAGE_SUMMARY = `id createdAt subject preview from fromAddress { ${ADDRESS} } to cc labels
  thread { id } inbox { id email }
  attachments { id filename contentType size }
  authentication { authenticated spf { result } dmarc { result } }`;
/** What reading one message shows: the bodies, and attachments by link (never their bytes). */
const MESSAGE_FULL = `id messageId createdAt subject from fromAddress { ${ADDRESS} } to cc replyTo labels
  inReplyTo references thread { id } inbox { id email }
  text extractedText html size rawUrl
  attachments { id filename contentType size disposition downloadUrl }
  authentication { authenticated spf { result domain } dkim { result domain } dmarc { result domain } }`;
const THREAD_SUMMARY = `id subject preview labels senders recipients messageCount lastMessageAt inbox { id email }`;
const DRAFT = `id createdAt updatedAt subject to cc bcc text html inbox { id email }`;
const INBOX = `id email displayName createdAt pod { id name }`;

/** Connection edges → their nodes, for the tools that list. */
function nodes(connection: Data | null | undefined): Data[] {
  return (connection?.edges ?? []).map((edge: Data) => edge.node);
}

/** The output schema of a listing tool: `{ <items>: [node], pageInfo }`, from the connection at `path`. */
function listing(key: string, path: string[]) {
  return {
    result: (data: Data) => {
      const connection = path.reduce<Data | null | undefined>((value, step) => value?.[step], data);
      return {
        [key]: nodes(connection),
        pageInfo: connection?.pageInfo ?? { hasNextPage: false, endCursor: null },
      };
    },
    output: (schema: JsonSchema) => ({
      type: "object",
      properties: {
        [key]: { type: "array", items: schemaAt(schema, [...path, "edges", "[]", "node"]) },
        pageInfo: schemaAt(schema, [...path, "pageInfo"]),
      },
      required: [key, "pageInfo"],
      additionalProperties: false,
    }),
  };
}

/** `{ <key>: value }` where value is the object at `path` (the data's root field, usually). */
function single(key: string, path: string[]) {
  return {
    result: (data: Data) => ({
      [key]: path.reduce<Data | null | undefined>((value, step) => value?.[step], data) ?? null,
    }),
    output: (schema: JsonSchema) => {
      const inner = schemaAt(schema, path);
      return {
        type: "object",
        properties: { [key]: inner.anyOf ? inner : { anyOf: [inner, { type: "null" }] } },
        required: [key],
        additionalProperties: false,
      };
    },
  };
}

export const TOOL_SPECS: readonly ToolSpec[] = [
  {
    name: "list_inboxes",
    title: "List inboxes",
    description:
      "The inboxes this key can see, with their email addresses. Page with `after` (pageInfo.endCursor).",
    readOnly: true,
    document: `query McpListInboxes($first: Int, $after: String) {
      inboxes(first: $first, after: $after) { edges { node { ${INBOX} } } ${PAGE} }
    }`,
    ...listing("inboxes", ["inboxes"]),
  },
  {
    name: "list_threads",
    title: "List threads",
    description:
      "Conversations in an inbox (or every inbox this key can see), most recent activity first, optionally narrowed by a MessageFilter (from, to, subject, labels, since, until, hasAttachments).",
    readOnly: true,
    document: `query McpListThreads($inboxId: ID, $filter: MessageFilter, $first: Int, $after: String) {
      threads(inboxId: $inboxId, filter: $filter, first: $first, after: $after) { edges { node { ${THREAD_SUMMARY} } } ${PAGE} }
    }`,
    ...listing("threads", ["threads"]),
  },
  {
    name: "get_thread",
    title: "Read a thread",
    description:
      "One conversation with its messages, oldest first (bodies included; attachments by download link).",
    readOnly: true,
    document: `query McpGetThread($threadId: ID!, $first: Int, $after: String) {
      thread(id: $threadId) { ${THREAD_SUMMARY}
        messages(first: $first, after: $after) { edges { node { ${MESSAGE_FULL} } } ${PAGE} } }
    }`,
    result: (data) => {
      if (!data.thread) return { thread: null };
      const { messages, ...thread } = data.thread;
      return {
        thread: { ...thread, messages: nodes(messages), messagesPageInfo: messages?.pageInfo ?? null },
      };
    },
    output: (schema) => {
      const thread = schemaAt(schema, ["thread"]);
      const properties = { ...(thread.properties as Record<string, JsonSchema>) };
      delete properties.messages;
      const threadOut = {
        type: "object",
        properties: {
          ...properties,
          messages: { type: "array", items: schemaAt(schema, ["thread", "messages", "edges", "[]", "node"]) },
          messagesPageInfo: {
            anyOf: [schemaAt(schema, ["thread", "messages", "pageInfo"]), { type: "null" }],
          },
        },
        required: [...Object.keys(properties), "messages", "messagesPageInfo"],
        additionalProperties: false,
      };
      return {
        type: "object",
        properties: { thread: { anyOf: [threadOut, { type: "null" }] } },
        required: ["thread"],
        additionalProperties: false,
      };
    },
  },
  {
    name: "get_message",
    title: "Read a message",
    description:
      "One message: headers that matter, the text and HTML bodies, the new text of a reply (extractedText), attachments by download link.",
    readOnly: true,
    document: `query McpGetMessage($messageId: ID!) { message(id: $messageId) { ${MESSAGE_FULL} } }`,
    ...single("message", ["message"]),
  },
  {
    name: "search_messages",
    title: "Search messages",
    description:
      'Full-text search over subject, sender and recipients, attachment filenames and text, best match first, in web-search syntax ("exact phrase", or, -word); optionally within an inbox or pod and narrowed by a MessageFilter. Each result has its rank and the matching fragments (matches wrapped in <mark>…</mark>).',
    readOnly: true,
    document: `query McpSearchMessages($query: String!, $inboxId: ID, $podId: ID, $filter: MessageFilter, $first: Int, $after: String) {
      searchMessages(query: $query, inboxId: $inboxId, podId: $podId, filter: $filter, first: $first, after: $after) {
        edges { rank highlights { field fragments } node { ${MESSAGE_SUMMARY} } } ${PAGE}
      }
    }`,
    result: (data) => ({
      messages: (data.searchMessages?.edges ?? []).map((edge: Data) => ({
        ...edge.node,
        rank: edge.rank,
        highlights: edge.highlights,
      })),
      pageInfo: data.searchMessages?.pageInfo ?? { hasNextPage: false, endCursor: null },
    }),
    output: (schema) => {
      const node = schemaAt(schema, ["searchMessages", "edges", "[]", "node"]);
      const edge = schemaAt(schema, ["searchMessages", "edges", "[]"]);
      const edgeProperties = edge.properties as Record<string, JsonSchema>;
      return {
        type: "object",
        properties: {
          messages: {
            type: "array",
            items: {
              ...node,
              properties: {
                ...(node.properties as object),
                rank: edgeProperties.rank,
                highlights: edgeProperties.highlights,
              },
              required: [...(node.required as string[]), "rank", "highlights"],
            },
          },
          pageInfo: schemaAt(schema, ["searchMessages", "pageInfo"]),
        },
        required: ["messages", "pageInfo"],
        additionalProperties: false,
      };
    },
  },
  {
    name: "send_message",
    title: "Send a message",
    description: "Sends a new message from one of your inboxes. Returns the sent copy.",
    readOnly: false,
    document: `mutation McpSendMessage($inboxId: ID!, $to: [String!]!, $cc: [String!], $bcc: [String!],
      $subject: String, $text: String, $html: String, $labels: [String!], $idempotencyKey: String) {
      sendMessage(input: { inboxId: $inboxId, to: $to, cc: $cc, bcc: $bcc, subject: $subject, text: $text, html: $html,
        labels: $labels, idempotencyKey: $idempotencyKey }) {
        message { ${MESSAGE_SUMMARY} }
      }
    }`,
    ...single("message", ["sendMessage", "message"]),
  },
  {
    name: "reply_to_message",
    title: "Reply to a message",
    description:
      "Replies from the message's inbox to its sender (or Reply-To), in its thread; replyAll also to the other recipients.",
    readOnly: false,
    document: `mutation McpReplyToMessage($messageId: ID!, $text: String, $html: String, $replyAll: Boolean, $labels: [String!],
      $idempotencyKey: String) {
      replyToMessage(input: { messageId: $messageId, text: $text, html: $html, replyAll: $replyAll, labels: $labels,
        idempotencyKey: $idempotencyKey }) {
        message { ${MESSAGE_SUMMARY} }
      }
    }`,
    ...single("message", ["replyToMessage", "message"]),
  },
  {
    name: "forward_message",
    title: "Forward a message",
    description:
      "Forwards a message from its inbox with your note; the original goes along attached, unchanged.",
    readOnly: false,
    document: `mutation McpForwardMessage($messageId: ID!, $to: [String!]!, $cc: [String!], $bcc: [String!], $text: String, $html: String,
      $idempotencyKey: String) {
      forwardMessage(input: { messageId: $messageId, to: $to, cc: $cc, bcc: $bcc, text: $text, html: $html,
        idempotencyKey: $idempotencyKey }) {
        message { ${MESSAGE_SUMMARY} }
      }
    }`,
    ...single("message", ["forwardMessage", "message"]),
  },
  {
    name: "update_labels",
    title: "Change a message's labels",
    description: "Adds and removes labels on a message (the system labels received and sent cannot change).",
    readOnly: false,
    document: `mutation McpUpdateLabels($messageId: ID!, $addLabels: [String!], $removeLabels: [String!]) {
      updateMessage(input: { id: $messageId, addLabels: $addLabels, removeLabels: $removeLabels }) {
        message { id subject labels }
      }
    }`,
    ...single("message", ["updateMessage", "message"]),
  },
  {
    name: "create_draft",
    title: "Write a draft",
    description:
      "Saves a draft in an inbox (optionally as a reply to a message) to send later with send_draft.",
    readOnly: false,
    document: `mutation McpCreateDraft($inboxId: ID!, $to: [String!], $cc: [String!], $bcc: [String!], $subject: String,
      $text: String, $html: String, $inReplyToMessageId: ID) {
      createDraft(input: { inboxId: $inboxId, to: $to, cc: $cc, bcc: $bcc, subject: $subject, text: $text, html: $html,
        inReplyToMessageId: $inReplyToMessageId }) { draft { ${DRAFT} } }
    }`,
    ...single("draft", ["createDraft", "draft"]),
  },
  {
    name: "send_draft",
    title: "Send a draft",
    description: "Sends a draft as it stands (and deletes it). Returns the sent message.",
    readOnly: false,
    document: `mutation McpSendDraft($draftId: ID!, $idempotencyKey: String) {
      sendDraft(input: { id: $draftId, idempotencyKey: $idempotencyKey }) { message { ${MESSAGE_SUMMARY} } }
    }`,
    ...single("message", ["sendDraft", "message"]),
  },
  {
    name: "list_drafts",
    title: "List drafts",
    description: "Drafts in an inbox (or every inbox this key can see), newest first.",
    readOnly: true,
    document: `query McpListDrafts($inboxId: ID, $first: Int, $after: String) {
      drafts(inboxId: $inboxId, first: $first, after: $after) { edges { node { ${DRAFT} } } ${PAGE} }
    }`,
    ...listing("drafts", ["drafts"]),
  },
  {
    name: "get_attachment",
    title: "Get an attachment",
    description:
      "An attachment of a message: its name, type, size and a download URL (valid for a limited time; treat it as a secret). Never the bytes.",
    readOnly: true,
    document: `query McpGetAttachment($messageId: ID!) {
      message(id: $messageId) { id attachments { id filename contentType size disposition contentId downloadUrl } }
    }`,
    extraRequired: ["attachmentId"],
    extraInput: {
      attachmentId: { type: "string", description: "The attachment's id (from get_message or get_thread)." },
    },
    result: (data, args) => ({
      attachment: (data.message?.attachments ?? []).find((a: Data) => a.id === args.attachmentId) ?? null,
    }),
    output: (schema) => ({
      type: "object",
      properties: {
        attachment: { anyOf: [schemaAt(schema, ["message", "attachments", "[]"]), { type: "null" }] },
      },
      required: ["attachment"],
      additionalProperties: false,
    }),
  },
  {
    name: "create_inbox",
    title: "Create an inbox",
    description: "Creates an inbox (a new email address) in your pod, or in podId.",
    readOnly: false,
    document: `mutation McpCreateInbox($username: String, $domain: String, $displayName: String, $podId: ID, $clientId: String) {
      createInbox(input: { username: $username, domain: $domain, displayName: $displayName, podId: $podId, clientId: $clientId }) {
        inbox { ${INBOX} }
      }
    }`,
    ...single("inbox", ["createInbox", "inbox"]),
  },
  {
    name: "wait_for_message",
    title: "Wait for a message",
    description:
      "Blocks until a message matching the filter arrives in the inbox (at most timeoutSeconds, 120 at most) and returns it; null when none came in time. With includeExisting, the newest matching message already there is returned at once.",
    readOnly: true,
    // The first operation is what matches and reads a message; the subscription is what it waits on.
    document: `query McpWaitForMessageMatch($inboxId: ID!, $filter: MessageFilter, $order: SortOrder) {
      messages(inboxId: $inboxId, filter: $filter, order: $order, first: 50) { edges { node { ${MESSAGE_FULL} } } }
    }
    subscription McpWaitForMessage($inboxId: ID!) { messageReceived(inboxId: $inboxId) { id createdAt } }`,
    hiddenVariables: ["order"],
    extraInput: {
      timeoutSeconds: {
        type: "integer",
        minimum: 1,
        maximum: 120,
        description: "How long to wait, in seconds: 1 to 120 (60 unless given).",
      },
      includeExisting: {
        type: "boolean",
        description:
          "Return the newest matching message already in the inbox, if there is one (false unless given).",
      },
    },
    output: (schema) => ({
      type: "object",
      properties: {
        message: { anyOf: [schemaAt(schema, ["messages", "edges", "[]", "node"]), { type: "null" }] },
      },
      required: ["message"],
      additionalProperties: false,
    }),
  },
];

/** The tools, with their schemas and permissions computed from `schema`. */
export function buildTools(schema: GraphQLSchema, specs: readonly ToolSpec[] = TOOL_SPECS): Tool[] {
  return specs.map((spec) => {
    const parsed = parse(spec.document);
    const input = variablesSchema(schema, parsed);
    const hidden = new Set(spec.hiddenVariables ?? []);
    const variables = Object.entries(input.properties as Record<string, JsonSchema>).filter(
      ([n]) => !hidden.has(n),
    );
    const required = [
      ...((input.required as string[] | undefined) ?? []).filter((n) => !hidden.has(n)),
      ...(spec.extraRequired ?? []),
    ];
    const inputSchema = {
      ...input,
      properties: { ...Object.fromEntries(variables), ...spec.extraInput },
      ...(required.length ? { required } : {}),
    };
    const data = dataSchema(schema, parsed);
    return {
      ...spec,
      parsed,
      permissions: requiredPermissions(schema, parsed),
      inputSchema,
      outputSchema: spec.output ? spec.output(data) : data,
    };
  });
}
