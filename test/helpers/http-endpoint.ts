// An HTTP endpoint of the test file's own on 127.0.0.1 (what a webhook calls), listening during its tests.
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll } from "vitest";

/** `url` (no trailing slash) once beforeAll ran; closed, with its open connections, after the tests. */
export function httpEndpoint(handler: (req: IncomingMessage, res: ServerResponse) => void): { url: string } {
  const endpoint = { url: "" };
  const http = createServer(handler);
  beforeAll(async () => {
    await new Promise<void>((resolve) => http.listen(0, "127.0.0.1", resolve));
    endpoint.url = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
  });
  afterAll(() => {
    http.closeAllConnections();
    http.close();
  });
  return endpoint;
}

/** Calls `then` with the request's whole body, as text, once it has arrived. */
export function readBody(req: IncomingMessage, then: (body: string) => void) {
  let body = "";
  req.on("data", (chunk: Buffer) => {
    body += chunk.toString();
  });
  req.on("end", () => then(body));
}
