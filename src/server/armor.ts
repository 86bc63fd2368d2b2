// Bounds on what one GraphQL operation may ask for (graphql-armor), enforced while parsing and
// validating, before any resolver runs. Messages name the rule broken, never the number.
import { EnvelopArmorPlugin } from "@escape.tech/graphql-armor";
import { GraphQLError, type ValidationContext } from "graphql";
import type { Plugin } from "graphql-yoga";
import type { Config } from "../config.ts";

/** The bounds, also listed in the README ("Limits"). */
export const OPERATION_LIMITS = {
  /** Nesting of fields; fragments count as their fields (flattened). Introspection is exempt. */
  maxDepth: 12,
  /** graphql-armor's estimate: objects 2, scalars 1, ×1.5 per level, × a literal `first`/`last`. */
  maxCost: 50_000,
  maxAliases: 20,
  maxDirectives: 20,
  maxTokens: 2000,
} as const;

/**
 * JSON request bodies larger than this are refused with 413, before they are read whole. It is as
 * large as the biggest message a caller may send (its attachments arrive base64-encoded in the
 * JSON, 4/3 of their size) plus room for the rest of the request, and never under 1 MiB.
 */
export function maxRequestBodyBytes(config: Pick<Config, "maxOutboundBytes">): number {
  return Math.max(1024 * 1024, Math.ceil((config.maxOutboundBytes * 4) / 3) + 256 * 1024);
}

const rejection = (message: string) =>
  new GraphQLError(message, { extensions: { code: "GRAPHQL_VALIDATION_FAILED" } });

/** A validation rule's rejection, reported like any other validation error (HTTP 400). */
const report = (message: string) => ({
  exposeLimits: false,
  propagateOnRejection: false,
  onReject: [(context: ValidationContext | null) => context?.reportError(rejection(message))],
});

export function useOperationLimits(options: { blockFieldSuggestions: boolean }): Plugin {
  return EnvelopArmorPlugin({
    maxDepth: {
      n: OPERATION_LIMITS.maxDepth,
      flattenFragments: true,
      ...report("Query is nested too deeply."),
    },
    costLimit: {
      maxCost: OPERATION_LIMITS.maxCost,
      ...report("Query is too expensive: ask for fewer fields or smaller pages."),
    },
    maxAliases: { n: OPERATION_LIMITS.maxAliases, ...report("Query uses too many aliases.") },
    maxDirectives: { n: OPERATION_LIMITS.maxDirectives, ...report("Query uses too many directives.") },
    maxTokens: {
      n: OPERATION_LIMITS.maxTokens,
      exposeLimits: false,
      // Counted while parsing, where there is no validation context: our own error ends the parse.
      onReject: [
        () => {
          throw rejection("Query is too large.");
        },
      ],
    },
    // Introspection is on, so suggestions reveal nothing new; they are still noise outside development.
    blockFieldSuggestion: { enabled: options.blockFieldSuggestions, mask: "" },
  }) as Plugin;
}
