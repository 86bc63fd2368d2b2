// `npx mailroom mcp`: MCP over stdio for clients that start a local process (Claude Desktop, Cursor),
// bridged to a running server's POST /mcp with the key in MAILROOM_API_KEY (docs/mcp.md). Every
// message is passed through unchanged: the server authenticates, cuts the tool list and runs each
// tool, so the bridge holds no rule of its own.
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { StdioServerTransport } from "@modelcontextprotocol/sdk/server/stdio.js";
import type { JSONRPCMessage } from "@modelcontextprotocol/sdk/types.js";

export interface StdioSettings {
  /** POST /mcp of the server. */
  endpoint: URL;
  apiKey: string;
}

export class StdioSettingsError extends Error {}

/** MAILROOM_URL (the server's base URL; default http://127.0.0.1:4000) and MAILROOM_API_KEY. */
export function stdioSettings(env: Record<string, string | undefined>): StdioSettings {
  const apiKey = env.MAILROOM_API_KEY?.trim();
  if (!apiKey) throw new StdioSettingsError("MAILROOM_API_KEY must be set to a Mailroom API key.");
  const base = env.MAILROOM_URL?.trim() || "http://127.0.0.1:4000";
  let endpoint: URL;
  try {
    endpoint = new URL(base);
  } catch {
    throw new StdioSettingsError(`MAILROOM_URL is not a URL: ${base}`);
  }
  if (endpoint.protocol !== "http:" && endpoint.protocol !== "https:")
    throw new StdioSettingsError(`MAILROOM_URL must be http or https: ${base}`);
  // The server's base URL, or its /graphql or /mcp endpoint: all lead to /mcp.
  endpoint.pathname = `${endpoint.pathname.replace(/\/(graphql|mcp)\/?$/, "").replace(/\/$/, "")}/mcp`;
  return { endpoint, apiKey };
}

function isRequest(
  message: JSONRPCMessage,
): message is JSONRPCMessage & { id: string | number; method: string } {
  return "method" in message && "id" in message;
}

/** Runs until stdin closes. */
export async function runStdioBridge(settings: StdioSettings): Promise<void> {
  const remote = new StreamableHTTPClientTransport(settings.endpoint, {
    requestInit: { headers: { Authorization: `Bearer ${settings.apiKey}` } },
  });
  const local = new StdioServerTransport();
  let closing = false;
  const close = async () => {
    if (closing) return;
    closing = true;
    await remote.close().catch(() => {});
    await local.close().catch(() => {});
  };
  const closed = new Promise<void>((resolve) => {
    local.onclose = () => {
      void close().then(resolve);
    };
    process.stdin.once("end", () => void close().then(resolve));
  });
  remote.onmessage = (message) => {
    void local.send(message).catch(() => {});
  };
  remote.onerror = (error) => {
    process.stderr.write(`mailroom mcp: ${error.message}\n`);
  };
  local.onmessage = (message) => {
    remote.send(message).catch((error: Error) => {
      // A refused key (401), a server that is away: the client's request fails with the reason.
      if (isRequest(message)) {
        void local
          .send({
            jsonrpc: "2.0",
            id: message.id,
            error: { code: -32000, message: `Mailroom at ${settings.endpoint.origin}: ${error.message}` },
          })
          .catch(() => {});
      } else {
        process.stderr.write(`mailroom mcp: ${error.message}\n`);
      }
    });
  };
  await remote.start();
  await local.start();
  await closed;
}
