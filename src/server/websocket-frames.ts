// How large a frame a graphql-ws client may send. ws judges a frame by its header and closes with
// 1009 before reading the payload, so the limit bounds what one connection can make the server hold:
// the HTTP body limit (maxRequestBodyBytes) once authenticated, far less before. docs/limits.md.
import type { WebSocket, WebSocketServer } from "ws";
import type { Logger } from "../logger.ts";

/**
 * Before its connection_init is accepted a client may send nothing else that matters: that message
 * holds a key and a few parameters. Anything larger is refused before it is read.
 */
export const UNAUTHENTICATED_FRAME_BYTES = 64 * 1024;

/**
 * ws fixes one maxPayload per server, read by each connection's receiver as it parses frame headers;
 * there is no public way to change one connection's, so this sets the receiver's. Checked rather than
 * assumed: if a ws release renames it, the server-wide limit still holds and test/websocket-frames
 * fails on the unauthenticated case.
 */
export function setFrameLimit(socket: WebSocket, bytes: number): void {
  const receiver = (socket as unknown as { _receiver?: { _maxPayload?: unknown } })._receiver;
  if (receiver && typeof receiver._maxPayload === "number") receiver._maxPayload = bytes;
}

/** Call after graphql-ws's useServer(): every new connection starts at the unauthenticated limit. */
export function limitUnauthenticatedFrames(server: WebSocketServer, logger: Logger): void {
  server.on("connection", (socket) => {
    setFrameLimit(socket, UNAUTHENTICATED_FRAME_BYTES);
    // ws reports a client's bad frame (too large, malformed) as an error after it has closed the
    // connection; graphql-ws's listener would write each to stderr as an internal error, a log any
    // client could flood by reconnecting.
    socket.removeAllListeners("error");
    socket.on("error", (error) => logger.debug({ err: error }, "WebSocket connection closed on a bad frame"));
  });
}
