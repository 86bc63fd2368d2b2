// A small Mailroom agent: it watches one inbox over graphql-ws and answers every message that arrives
// with an automatic reply. Its operations are typed by the client graphql-codegen generates from
// ../schema.graphql into generated/ (README.md beside this file: running it, regenerating the client).
import { pathToFileURL } from "node:url";
import { createClient } from "graphql-ws";
import WebSocket from "ws";
import type { AgentMessageReceivedSubscription, TypedDocumentString } from "./generated/graphql.ts";
import { graphql } from "./generated/index.ts";

const AgentInbox = graphql(`
  query AgentInbox($email: String!) {
    inbox(email: $email) {
      id
      email
    }
  }
`);

const AgentMessageReceived = graphql(`
  subscription AgentMessageReceived($inboxId: ID!) {
    messageReceived(inboxId: $inboxId) {
      id
      from
      subject
      headers {
        name
        value
      }
    }
  }
`);

const AgentReply = graphql(`
  mutation AgentReply($input: ReplyToMessageInput!) {
    replyToMessage(input: $input) {
      message {
        id
        to
        subject
      }
    }
  }
`);

export interface AgentOptions {
  /** The server, e.g. http://127.0.0.1:4000 (`npm start`'s default). */
  url: string;
  /** An API key with INBOX_READ, MESSAGE_READ and MESSAGE_SEND on the inbox. */
  apiKey: string;
  /** The address of the inbox to watch. */
  inbox: string;
  log?: (line: string) => void;
}

/** A query or mutation over HTTP, typed by its generated document. */
async function execute<TResult, TVariables>(
  options: AgentOptions,
  document: TypedDocumentString<TResult, TVariables>,
  variables: TVariables,
): Promise<TResult> {
  const response = await fetch(`${options.url}/graphql`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${options.apiKey}` },
    body: JSON.stringify({ query: document.toString(), variables }),
  });
  const body = (await response.json()) as { data?: TResult; errors?: { message: string }[] };
  if (body.errors?.length || !body.data) {
    throw new Error(`${response.status}: ${body.errors?.map((error) => error.message).join("; ")}`);
  }
  return body.data;
}

/** Mail that must not be answered automatically: our own, and other machines' (RFC 3834). */
function isAutomatic(
  message: { from: string; headers: { name: string; value: string }[] },
  ownAddress: string,
): boolean {
  if (message.from.toLowerCase().includes(ownAddress.toLowerCase())) return true;
  return message.headers.some(({ name, value }) => {
    const header = name.toLowerCase();
    if (header === "auto-submitted") return value.trim().toLowerCase() !== "no";
    if (header === "precedence") return /bulk|junk|list/i.test(value);
    return header === "list-id";
  });
}

/** Watches the inbox until the returned stop() is called. Resolves once the subscription is sent. */
export async function startAgent(options: AgentOptions): Promise<{ stop(): Promise<void> }> {
  const log = options.log ?? ((line: string) => console.log(line));
  const { inbox } = await execute(options, AgentInbox, { email: options.inbox });
  if (!inbox) throw new Error(`no inbox ${options.inbox} visible to this key`);

  const client = createClient({
    url: `${options.url.replace(/^http/, "ws")}/graphql`,
    webSocketImpl: WebSocket,
    connectionParams: { authorization: `Bearer ${options.apiKey}` },
    // A restarted server or a dropped connection: keep trying.
    retryAttempts: Number.POSITIVE_INFINITY,
  });
  const events = client.iterate({
    query: AgentMessageReceived.toString(),
    variables: { inboxId: inbox.id },
  });
  const done = (async () => {
    for await (const event of events) {
      if (event.errors?.length) {
        log(`subscription error: ${event.errors.map((error) => error.message).join("; ")}`);
        continue;
      }
      // graphql-ws does not know the document's type; the generated one does.
      const message = (event.data as AgentMessageReceivedSubscription | null | undefined)?.messageReceived;
      if (!message || isAutomatic(message, inbox.email)) continue;
      try {
        const { replyToMessage } = await execute(options, AgentReply, {
          input: {
            messageId: message.id,
            text: `Thank you for your message${message.subject ? ` "${message.subject}"` : ""}. This is an automatic reply: a person will answer soon.`,
            labels: ["auto-replied"],
            // A replayed event or a second agent never answers twice.
            idempotencyKey: `auto-reply:${message.id}`,
          },
        });
        log(`replied to ${message.from} (${replyToMessage?.message.id})`);
      } catch (error) {
        log(`reply to ${message.id} failed: ${(error as Error).message}`);
      }
    }
  })();
  log(`watching ${inbox.email}`);
  return {
    async stop() {
      await events.return?.();
      await client.dispose();
      await done;
    },
  };
}

// Run directly: `node --import tsx examples/auto-reply-agent.ts` (README.md beside this file).
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const apiKey = process.env.MAILROOM_API_KEY;
  const inbox = process.env.MAILROOM_INBOX;
  if (!apiKey || !inbox) {
    console.error(
      "set MAILROOM_API_KEY (a key that may read and send) and MAILROOM_INBOX (the inbox's address)",
    );
    process.exit(78);
  }
  const agent = await startAgent({ url: process.env.MAILROOM_URL ?? "http://127.0.0.1:4000", apiKey, inbox });
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.on(signal, () => {
      agent.stop().then(() => process.exit(0));
    });
  }
}
