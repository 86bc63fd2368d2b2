// The tools as the server's schema defines them, computed once per process.
import { schema } from "../schema/index.ts";
import { buildTools, type Tool } from "./tools.ts";

let tools: Tool[] | undefined;

export function mcpTools(): Tool[] {
  tools ??= buildTools(schema);
  return tools;
}
