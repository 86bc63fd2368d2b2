// How large a frame a graphql-ws client may send: 64 KiB until its connection_init is accepted, then
// the HTTP request body limit; a frame over the limit closes the connection with 1009, unread.
// What that does to the server's memory is measured in test/memory.test.ts.
import { describe, expect, it, vi } from "vitest";
import WebSocket from "ws";
import { maxRequestBodyBytes } from "../src/server/armor.ts";
import { UNAUTHENTICATED_FRAME_BYTES } from "../src/server/websocket-frames.ts";
import { organizationFixture, serverSuite } from "./helpers/suite.ts";

const { database, server } = serverSuite({ maxOutboundBytes: 1024 });
const org = organizationFixture(database);
/** The smallest the request body limit gets (1 MiB), so frames over it stay cheap to send. */
const LIMIT = maxRequestBodyBytes({ maxOutboundBytes: 1024 });

interface Connection {
  socket: WebSocket;
  /** The next message the server sends, parsed. */
  next(): Promise<{ type: string; payload?: unknown }>;
  closed: Promise<number>;
}

async function connect(): Promise<Connection> {
  const socket = new WebSocket(server.wsUrl, "graphql-transport-ws");
  socket.on("error", () => {});
  const queue: string[] = [];
  let wake: (() => void) | undefined;
  socket.on("message", (data) => {
    queue.push(String(data));
    wake?.();
  });
  const closed = new Promise<number>((resolve) => socket.once("close", (code) => resolve(code)));
  await new Promise((resolve, reject) => {
    socket.once("open", resolve);
    socket.once("error", reject);
  });
  return {
    socket,
    closed,
    async next() {
      while (queue.length === 0) await new Promise<void>((resolve) => (wake = resolve));
      return JSON.parse(queue.shift() as string);
    },
  };
}

const init = (padding: number) =>
  JSON.stringify({
    type: "connection_init",
    payload: { Authorization: `Bearer ${org.apiKey}`, padding: "p".repeat(padding) },
  });

describe("WebSocket frame limits", () => {
  it(`takes a connection_init of up to ${UNAUTHENTICATED_FRAME_BYTES / 1024} KiB, and closes with 1009 on anything larger before it`, async () => {
    const large = await connect();
    large.socket.send(init(UNAUTHENTICATED_FRAME_BYTES));
    expect(await large.closed).toBe(1009);

    const fits = await connect();
    const frame = init(0);
    fits.socket.send(init(UNAUTHENTICATED_FRAME_BYTES - frame.length));
    expect((await fits.next()).type).toBe("connection_ack");
    fits.socket.close();
  });

  it("takes frames up to the request body limit once authenticated, and closes with 1009 beyond it", async () => {
    const connection = await connect();
    connection.socket.send(init(0));
    expect((await connection.next()).type).toBe("connection_ack");
    const ping = (size: number) => {
      const empty = JSON.stringify({ type: "ping", payload: { data: "" } });
      return JSON.stringify({ type: "ping", payload: { data: "d".repeat(size - empty.length) } });
    };
    connection.socket.send(ping(LIMIT));
    expect((await connection.next()).type).toBe("pong");
    connection.socket.send(ping(LIMIT + 1));
    expect(await connection.closed).toBe(1009);
  });

  it("does not report a client's oversized frame as an internal error", async () => {
    const errors = vi.spyOn(console, "error");
    try {
      const connection = await connect();
      connection.socket.send("x".repeat(UNAUTHENTICATED_FRAME_BYTES + 1));
      expect(await connection.closed).toBe(1009);
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(errors).not.toHaveBeenCalled();
    } finally {
      errors.mockRestore();
    }
  });
});
