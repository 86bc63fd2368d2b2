// One MCP server for one caller (docs/mcp.md): tools/list cut to the caller's permissions, tools/call
// running the tool's GraphQL operation through the executor it is given (the server's own pipeline,
// src/server/mcp.ts), results as structuredContent plus text, failures as tool errors that name the
// missing permission and the fix.
import { Server } from "@modelcontextprotocol/sdk/server/index.js";
import {
  CallToolRequestSchema,
  type CallToolResult,
  ListToolsRequestSchema,
} from "@modelcontextprotocol/sdk/types.js";
import { AjvJsonSchemaValidator } from "@modelcontextprotocol/sdk/validation/ajv";
import type { GraphQLFormattedError } from "graphql";
import { type Permission, permissionFix } from "../auth/permissions.ts";
import { renderText } from "./render.ts";
import type { Data, Tool, ToolArgs } from "./tools.ts";

export const MCP_SERVER_INFO = { name: "mailroom", version: "0.1.0" } as const;

/** A GraphQL response as it comes over the wire. */
export interface WireResult {
  data?: Record<string, unknown> | null;
  errors?: readonly GraphQLFormattedError[];
}

/** Runs one operation of a tool's document as the caller, through the whole GraphQL pipeline. */
export type Executor = (
  tool: Tool,
  operationName: string,
  variables: Record<string, unknown>,
  signal: AbortSignal,
) => Promise<WireResult>;

/** The messages arriving in an inbox, as the caller may see them: a live subscription, ended by `signal`. */
export type ArrivalStream = (
  tool: Tool,
  operationName: string,
  variables: Record<string, unknown>,
  signal: AbortSignal,
) => AsyncIterable<WireResult>;

export interface McpCaller {
  permissions: ReadonlySet<string>;
  execute: Executor;
  subscribe: ArrivalStream;
  /** Aborted when the client goes away (the HTTP request closes). */
  signal: AbortSignal;
}

export const WAIT_DEFAULT_SECONDS = 60;
export const WAIT_MAX_SECONDS = 120;

function toolError(text: string): CallToolResult {
  return { isError: true, content: [{ type: "text", text }] };
}

export function missingPermissionError(toolName: string, missing: readonly string[]): CallToolResult {
  const list = missing.join(", ");
  return toolError(
    `The ${toolName} tool requires the ${list} permission${missing.length > 1 ? "s" : ""}, which this API key does not have. ` +
      `Fix: ${missing.map((permission) => permissionFix(permission as Permission)).join(" ")}`,
  );
}

/** A GraphQL error as a line a model can act on: its message, code, and the fix for FORBIDDEN. */
function describeError(error: GraphQLFormattedError): string {
  const extensions = (error.extensions ?? {}) as Record<string, unknown>;
  const parts = [error.message];
  if (typeof extensions.code === "string")
    parts.push(`(${extensions.code}${extensions.field ? `, field ${extensions.field}` : ""})`);
  if (typeof extensions.fix === "string") parts.push(`Fix: ${extensions.fix}`);
  else if (typeof extensions.requiredPermission === "string")
    parts.push(`Fix: ${permissionFix(extensions.requiredPermission as Permission)}`);
  // APPROVAL_REQUIRED: the held draft, which a person approves (approveDraft) or the agent withdraws.
  if (typeof extensions.draftId === "string") parts.push(`Draft: ${extensions.draftId}`);
  return parts.join(" ");
}

function errorsResult(errors: readonly GraphQLFormattedError[]): CallToolResult {
  return toolError(errors.map(describeError).join("\n"));
}

function success(result: Data, warnings: readonly GraphQLFormattedError[] = []): CallToolResult {
  const text = renderText(result);
  const note = warnings.length ? `\n\nWarnings:\n${warnings.map(describeError).join("\n")}` : "";
  return { content: [{ type: "text", text: text + note }], structuredContent: result };
}

/** Arguments the tool does not take, or required ones left out: named, before anything runs. */
function argumentProblem(tool: Tool, args: ToolArgs): string | undefined {
  const properties = (tool.inputSchema.properties ?? {}) as Record<string, unknown>;
  for (const name of Object.keys(args)) {
    if (!(name in properties))
      return `Unknown argument ${name} for ${tool.name}; it takes ${Object.keys(properties).join(", ")}. (BAD_USER_INPUT, field ${name})`;
  }
  for (const name of (tool.inputSchema.required as string[] | undefined) ?? []) {
    if (args[name] === undefined || args[name] === null)
      return `${tool.name} needs ${name}. (BAD_USER_INPUT, field ${name})`;
  }
  return undefined;
}

function variablesOf(tool: Tool, args: ToolArgs): Record<string, unknown> {
  const extra = new Set(Object.keys(tool.extraInput ?? {}));
  return Object.fromEntries(
    Object.entries(args).filter(([name, value]) => !extra.has(name) && value !== undefined),
  );
}

function operationName(tool: Tool, index = 0): string {
  const operation = tool.parsed.definitions.filter((d) => d.kind === "OperationDefinition")[index];
  const name = operation && "name" in operation ? operation.name?.value : undefined;
  if (!name) throw new Error(`${tool.name}: its operations must be named.`);
  return name;
}

export async function callTool(tool: Tool, args: ToolArgs, caller: McpCaller): Promise<CallToolResult> {
  const missing = tool.permissions.filter((p) => !caller.permissions.has(p));
  if (missing.length) return missingPermissionError(tool.name, missing);
  const problem = argumentProblem(tool, args);
  if (problem) return toolError(problem);
  if (tool.name === "wait_for_message") return waitForMessage(tool, args, caller);
  const result = await caller.execute(tool, operationName(tool), variablesOf(tool, args), caller.signal);
  const data = result.data as Data | null | undefined;
  const errors = result.errors ?? [];
  const rootsNull = !data || Object.values(data).every((value) => value === null);
  if (errors.length && rootsNull) return errorsResult(errors);
  if (!data) return toolError("The operation returned nothing.");
  const structured = tool.result ? tool.result(data, args) : data;
  if (tool.name === "get_attachment" && structured.attachment === null)
    return toolError(
      `Attachment ${String(args.attachmentId)} not found on message ${String(args.messageId)}. (NOT_FOUND)`,
    );
  return success(structured, errors);
}

/** Aborted when either signal is, or after `ms`. */
function deadline(signal: AbortSignal, ms: number): { signal: AbortSignal; clear(): void } {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), ms);
  const onAbort = () => controller.abort();
  signal.addEventListener("abort", onAbort, { once: true });
  if (signal.aborted) controller.abort();
  return {
    signal: controller.signal,
    clear() {
      clearTimeout(timer);
      signal.removeEventListener("abort", onAbort);
    },
  };
}

const later = (a: string | undefined, b: string): string => (a && Date.parse(a) > Date.parse(b) ? a : b);
const earlier = (a: string | undefined, b: string): string => (a && Date.parse(a) < Date.parse(b) ? a : b);

/**
 * wait_for_message: subscribes to the inbox's arrivals (the event stream behind subscriptions), then
 * checks what arrived since the call began (closing the gap before the subscription was in place),
 * then each arrival in turn against the filter, by the server's own MessageFilter over a window of
 * that one instant. Ends at the first match, the timeout (null) or the client going away.
 */
async function waitForMessage(tool: Tool, args: ToolArgs, caller: McpCaller): Promise<CallToolResult> {
  const timeoutSeconds = args.timeoutSeconds ?? WAIT_DEFAULT_SECONDS;
  if (
    typeof timeoutSeconds !== "number" ||
    !Number.isInteger(timeoutSeconds) ||
    timeoutSeconds < 1 ||
    timeoutSeconds > WAIT_MAX_SECONDS
  ) {
    return toolError(
      `timeoutSeconds must be a whole number from 1 to ${WAIT_MAX_SECONDS}. (BAD_USER_INPUT, field timeoutSeconds)`,
    );
  }
  if (args.includeExisting !== undefined && typeof args.includeExisting !== "boolean")
    return toolError("includeExisting must be true or false. (BAD_USER_INPUT, field includeExisting)");
  const filter = (args.filter ?? {}) as Record<string, unknown>;
  if (typeof filter !== "object" || Array.isArray(filter))
    return toolError("filter must be a MessageFilter object. (BAD_USER_INPUT, field filter)");
  const inboxId = args.inboxId;
  const startedAt = new Date().toISOString();
  const match = operationName(tool, 0);
  const wait = deadline(caller.signal, timeoutSeconds * 1000);

  /** The first message matching the filter narrowed to [since, until), oldest first; or an error result. */
  const find = async (
    since: string | undefined,
    until: string | undefined,
    order: "OLDEST_FIRST" | "NEWEST_FIRST",
    id?: string,
  ): Promise<Data | CallToolResult | null> => {
    const window: Record<string, unknown> = { ...filter };
    if (since) window.since = later(filter.since as string | undefined, since);
    if (until) window.until = earlier(filter.until as string | undefined, until);
    const result = await caller.execute(tool, match, { inboxId, filter: window, order }, wait.signal);
    if (result.errors?.length && !result.data?.messages) return errorsResult(result.errors);
    const found = ((result.data?.messages as Data | null)?.edges ?? []).map(
      (edge: Data) => edge.node,
    ) as Data[];
    return (id ? found.find((message) => message.id === id) : found[0]) ?? null;
  };
  const done = (found: Data | CallToolResult) =>
    "content" in found ? (found as CallToolResult) : success({ message: found });

  try {
    if (args.includeExisting === true) {
      const existing = await find(undefined, undefined, "NEWEST_FIRST");
      if (existing) return done(existing);
    }
    const arrivals = caller.subscribe(tool, operationName(tool, 1), { inboxId }, wait.signal);
    const iterator = arrivals[Symbol.asyncIterator]();
    // The subscription is being established by this first pull; what arrived meanwhile is caught here.
    const first = iterator.next();
    first.catch(() => {});
    const caughtUp = await find(startedAt, undefined, "OLDEST_FIRST");
    if (caughtUp) {
      await iterator.return?.();
      return done(caughtUp);
    }
    let next = first;
    while (!wait.signal.aborted) {
      const step = await next;
      if (step.done) break;
      const event = step.value;
      if (event.errors?.length) return errorsResult(event.errors);
      const arrived = (event.data as Data | null)?.messageReceived as
        | { id: string; createdAt: string }
        | undefined;
      if (arrived) {
        const until = new Date(Date.parse(arrived.createdAt) + 1).toISOString();
        const found = await find(arrived.createdAt, until, "OLDEST_FIRST", arrived.id);
        if (found) {
          await iterator.return?.();
          return done(found);
        }
      }
      next = iterator.next();
    }
    await iterator.return?.();
    return success({ message: null });
  } catch (error) {
    if (wait.signal.aborted) return success({ message: null });
    throw error;
  } finally {
    wait.clear();
  }
}

// One for every server: the SDK would otherwise build an Ajv instance per request (most of the cost of
// a stateless call). It validates only elicitation answers, which these servers never ask for.
let validator: AjvJsonSchemaValidator | undefined;

/** An MCP server (SDK) for one caller; connect it to a transport. */
export function createMcpServer(tools: readonly Tool[], caller: McpCaller): Server {
  validator ??= new AjvJsonSchemaValidator();
  const server = new Server(MCP_SERVER_INFO, {
    jsonSchemaValidator: validator,
    capabilities: { tools: { listChanged: false } },
    instructions:
      "Mailroom: email inboxes for agents. list_inboxes first to learn your inbox ids; tools take and return global ids.",
  });
  server.setRequestHandler(ListToolsRequestSchema, async () => ({
    tools: tools
      .filter((tool) => tool.permissions.every((p) => caller.permissions.has(p)))
      .map((tool) => ({
        name: tool.name,
        title: tool.title,
        description: `${tool.description} Needs ${tool.permissions.join(", ")}.`,
        inputSchema: tool.inputSchema as { type: "object" },
        outputSchema: tool.outputSchema as { type: "object" },
        annotations: { title: tool.title, readOnlyHint: tool.readOnly, openWorldHint: !tool.readOnly },
      })),
  }));
  server.setRequestHandler(CallToolRequestSchema, async (request) => {
    const tool = tools.find((t) => t.name === request.params.name);
    if (!tool)
      return toolError(
        `There is no tool named ${request.params.name}. Tools: ${tools.map((t) => t.name).join(", ")}.`,
      );
    return callTool(tool, (request.params.arguments ?? {}) as ToolArgs, caller);
  });
  return server;
}

export type { Permission };
