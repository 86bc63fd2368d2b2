// What tests read back to check mail: as a client sees it (through the API), or as the database holds it.
import type { TestDatabase } from "./database.ts";
import { ok } from "./server.ts";

/** An inbox's messages, newest first, with the fields asked for, as the holder of `key` sees them. */
export async function inboxMessages(
  server: { url: string },
  key: string,
  inboxId: string,
  fields: string,
): Promise<any[]> {
  const data = await ok(
    server,
    `query($id: ID!) { inbox(id: $id) { messages { edges { node { ${fields} } } } } }`,
    { id: inboxId },
    { key },
  );
  return data.inbox.messages.edges.map((edge: any) => edge.node);
}

/** How many rows the database holds for this Message-ID, whatever the API shows. */
export async function storedCount(database: Pick<TestDatabase, "db">, messageId: string): Promise<number> {
  const rows = await database.db
    .selectFrom("messages")
    .select("id")
    .where("message_id_header", "=", messageId)
    .execute();
  return rows.length;
}
