// POST /mcp: the Model Context Protocol over Streamable HTTP (docs/mcp.md), stateless: every request
// is authenticated (the same Bearer keys and 401s as /graphql, through the same authenticateOnce),
// counted against the same default rate limit, and answered by a fresh MCP server for its caller.
// Each tool runs its GraphQL operation through yoga itself (yoga.fetch, as the same caller), so every
// plugin, guard, limit and log of /graphql applies; subscriptions (wait_for_message) run over yoga's
// SSE the same way, on the event stream every subscription uses.
import type { IncomingMessage, ServerResponse } from "node:http";
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import { ADDRESS_NOT_ALLOWED_MESSAGE, addressAllowed } from "../auth/allowed-ips.ts";
import { authenticateOnce, InvalidCredential } from "../auth/credentials.ts";
import type { Principal } from "../auth/principal.ts";
import type { Config } from "../config.ts";
import { UNAUTHENTICATED_MESSAGE, WWW_AUTHENTICATE } from "../errors.ts";
import type { Logger } from "../logger.ts";
import { createMcpServer, type McpCaller, type WireResult } from "../mcp/server.ts";
import type { Tool } from "../mcp/tools.ts";
import type { Services } from "../services.ts";
import { maxRequestBodyBytes } from "./armor.ts";
import type { Route } from "./http.ts";
import { clientAddress, limitRequest } from "./rate-limit.ts";
import type { Yoga } from "./yoga.ts";

export const MCP_PATH = "/mcp";

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) {
  res.writeHead(status, { "content-type": "application/json; charset=utf-8", ...headers });
  res.end(JSON.stringify(body));
}

function graphqlError(message: string, code: string) {
  return { errors: [{ message, extensions: { code } }] };
}

/** The fetch Request the authenticator reads credentials from: this request's headers. */
function headersOf(req: IncomingMessage): Headers {
  const headers = new Headers();
  for (const [name, value] of Object.entries(req.headers)) {
    if (value === undefined) continue;
    for (const one of Array.isArray(value) ? value : [value]) headers.append(name, one);
  }
  return headers;
}

/** The body, up to `limit` bytes; undefined when it is larger. */
async function readBody(req: IncomingMessage, limit: number): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > limit) return undefined;
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

/** Reads a text/event-stream body as GraphQL results, one per `next` event, until it completes. */
async function* sseResults(
  body: ReadableStream<Uint8Array>,
  signal: AbortSignal,
): AsyncGenerator<WireResult> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  const onAbort = () => void reader.cancel().catch(() => {});
  signal.addEventListener("abort", onAbort, { once: true });
  let buffer = "";
  try {
    while (!signal.aborted) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += decoder.decode(value, { stream: true });
      let end = buffer.indexOf("\n\n");
      while (end !== -1) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        end = buffer.indexOf("\n\n");
        let event = "message";
        const data: string[] = [];
        for (const line of block.split("\n")) {
          if (line.startsWith("event:")) event = line.slice(6).trim();
          else if (line.startsWith("data:")) data.push(line.slice(5).trimStart());
        }
        if (event === "complete") return;
        if (data.length) yield JSON.parse(data.join("\n")) as WireResult;
      }
    }
  } finally {
    signal.removeEventListener("abort", onAbort);
    await reader.cancel().catch(() => {});
  }
}

export function mcpRoute(
  yoga: Yoga,
  services: Services,
  config: Config,
  tools: readonly Tool[],
  logger: Logger,
): Route {
  const bodyLimit = maxRequestBodyBytes(config);

  return async (req, res) => {
    const path = (req.url ?? "").split("?")[0];
    if (path !== MCP_PATH) return false;
    const headers = headersOf(req);
    // Bearer keys only: a browser's session cookie does not open the MCP endpoint.
    headers.delete("cookie");
    const request = new Request(`http://localhost${MCP_PATH}`, { headers });
    let principal: Principal;
    try {
      principal = headers.has("authorization")
        ? await authenticateOnce(services.authenticator, req, request)
        : { kind: "anonymous" };
    } catch (error) {
      if (!(error instanceof InvalidCredential)) throw error;
      principal = { kind: "anonymous" };
    }
    const clientIp = clientAddress(req, config.trustProxy);
    const limited = await limitRequest(services.rateLimiter, principal, clientIp);
    if (limited.error) {
      const http = limited.error.extensions.http as { status: number; headers?: Record<string, string> };
      sendJson(res, http.status, graphqlError(limited.error.message, String(limited.error.extensions.code)), {
        ...http.headers,
      });
      return true;
    }
    for (const [name, value] of Object.entries(limited.headers)) res.setHeader(name, value);
    if (principal.kind === "anonymous") {
      sendJson(res, 401, graphqlError(UNAUTHENTICATED_MESSAGE, "UNAUTHENTICATED"), {
        "WWW-Authenticate": WWW_AUTHENTICATE,
      });
      return true;
    }
    // A key pinned to addresses is refused from any other, as on /graphql (every tool call checks it again).
    if (principal.kind === "apiKey" && !addressAllowed(principal.allowedIps, clientIp)) {
      sendJson(res, 403, graphqlError(ADDRESS_NOT_ALLOWED_MESSAGE, "FORBIDDEN"));
      return true;
    }
    if (req.method !== "POST") {
      // Stateless: no session to resume, no stream of server-initiated messages to open.
      sendJson(
        res,
        405,
        { jsonrpc: "2.0", error: { code: -32000, message: "Method not allowed: use POST." }, id: null },
        { Allow: "POST" },
      );
      return true;
    }
    const length = req.headers["content-length"];
    if (length !== undefined && (!/^\d+$/.test(length) || Number(length) > bodyLimit)) {
      sendJson(res, 413, graphqlError("Request body too large", "REQUEST_ENTITY_TOO_LARGE"));
      return true;
    }
    const raw = await readBody(req, bodyLimit);
    if (raw === undefined) {
      sendJson(res, 413, graphqlError("Request body too large", "REQUEST_ENTITY_TOO_LARGE"));
      return true;
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(raw.toString("utf8"));
    } catch {
      sendJson(res, 400, { jsonrpc: "2.0", error: { code: -32700, message: "Parse error" }, id: null });
      return true;
    }

    const gone = new AbortController();
    res.on("close", () => gone.abort());
    const innerHeaders = (accept: string): Record<string, string> => {
      const out: Record<string, string> = {
        authorization: headers.get("authorization") ?? "",
        "content-type": "application/json",
        accept,
      };
      for (const name of ["host", "x-forwarded-proto", "x-request-id", "user-agent"]) {
        const value = headers.get(name);
        if (value !== null) out[name] = value;
      }
      return out;
    };
    const post = (
      tool: Tool,
      operationName: string,
      variables: Record<string, unknown>,
      accept: string,
      signal: AbortSignal,
    ) =>
      yoga.fetch(
        "http://localhost/graphql",
        {
          method: "POST",
          headers: innerHeaders(accept),
          body: JSON.stringify({ query: tool.document, operationName, variables }),
          signal,
        },
        // The same Node request: its authentication is reused, and the rate limit already counted it.
        { req, mcp: true },
      );
    const caller: McpCaller = {
      permissions: principal.permissions,
      signal: gone.signal,
      async execute(tool, operationName, variables, signal) {
        const response = await post(
          tool,
          operationName,
          variables,
          "application/graphql-response+json",
          signal,
        );
        return (await response.json()) as WireResult;
      },
      async *subscribe(tool, operationName, variables, signal) {
        const response = await post(tool, operationName, variables, "text/event-stream", signal);
        const type = response.headers.get("content-type") ?? "";
        if (!type.includes("text/event-stream") || !response.body) {
          yield (await response.json()) as WireResult;
          return;
        }
        yield* sseResults(response.body, signal);
      },
    };
    const server = createMcpServer(tools, caller);
    const transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: undefined,
      enableJsonResponse: true,
    });
    res.on("close", () => {
      void transport.close().catch(() => {});
      void server.close().catch(() => {});
    });
    try {
      await server.connect(transport);
      await transport.handleRequest(req, res, parsed);
    } catch (error) {
      logger.error({ err: error }, "MCP request failed");
      if (!res.headersSent)
        sendJson(res, 500, { jsonrpc: "2.0", error: { code: -32603, message: "Internal error" }, id: null });
    }
    return true;
  };
}
