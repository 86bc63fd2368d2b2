// Queries executed by graphql-jit: a validated query document compiled once into a function, which
// runs without the general executor's per-field work (docs/performance.md, "Executing a query").
// Only the success path is compiled: a run with any error is answered by the ordinary executor
// instead, so errors keep their exact form (messages, `locations`, paths, extensions), and that
// operation stays on the ordinary executor from then on (its errors would cost two runs each time).
import { type DocumentNode, type ExecutionResult, type GraphQLSchema, getOperationAST } from "graphql";
import { type CompiledQuery, compileQuery, isCompiledQuery } from "graphql-jit";
import type { Plugin } from "graphql-yoga";
import { LRUCache } from "lru-cache";
import { isDatabaseUnavailable } from "../db/errors.ts";

/** How many query documents (per schema) keep their compiled form; the least recently used go first. */
export const COMPILED_QUERY_DOCUMENTS = 500;

/**
 * Counts since the process started, over every server in it: runs answered by compiled code, and
 * compiled runs answered again by the ordinary executor because they had errors (test/compiled-queries.test.ts).
 */
export const compiledQueryRuns = { compiled: 0, again: 0 };

/** A document's operations by name ("" for the only one), or `null` for one that stays on graphql-js. */
type Compiled = Map<string, CompiledQuery | null>;

type ExecuteFn = (args: ExecuteArgs) => unknown;
interface ExecuteArgs {
  schema: GraphQLSchema;
  document: DocumentNode;
  rootValue?: unknown;
  contextValue?: unknown;
  variableValues?: Record<string, unknown> | null;
  operationName?: string | null;
}

export function useCompiledQueries(maxDocuments = COMPILED_QUERY_DOCUMENTS): Plugin {
  const bySchema = new WeakMap<GraphQLSchema, LRUCache<string, Compiled>>();
  // A document without its source text (built in code, not parsed) is keyed by the object itself.
  const bySchemaAndNode = new WeakMap<GraphQLSchema, WeakMap<DocumentNode, Compiled>>();

  /** The operation's compiled form, or null; `forget` puts the operation on graphql-js for good. */
  function compiledOf(args: ExecuteArgs): { compiled: CompiledQuery | null; forget: () => void } {
    const { schema, document } = args;
    const source = document.loc?.source.body;
    let operations: Compiled | undefined;
    if (source !== undefined) {
      let cache = bySchema.get(schema);
      if (!cache) {
        cache = new LRUCache({ max: maxDocuments });
        bySchema.set(schema, cache);
      }
      operations = cache.get(source);
      if (!operations) {
        operations = new Map();
        cache.set(source, operations);
      }
    } else {
      let cache = bySchemaAndNode.get(schema);
      if (!cache) {
        cache = new WeakMap();
        bySchemaAndNode.set(schema, cache);
      }
      operations = cache.get(document);
      if (!operations) {
        operations = new Map();
        cache.set(document, operations);
      }
    }
    const name = args.operationName ?? "";
    let compiled = operations.get(name);
    if (compiled === undefined) {
      compiled = compile(schema, document, args.operationName ?? undefined);
      operations.set(name, compiled);
    }
    const known = operations;
    return { compiled, forget: () => known.set(name, null) };
  }

  return {
    onExecute({ executeFn, setExecuteFn }) {
      const ordinary = executeFn as unknown as ExecuteFn;
      // Compiled when it runs: an operation a later plugin stops (input rules, authentication) is not.
      setExecuteFn(((args: ExecuteArgs) => {
        const { compiled, forget } = compiledOf(args);
        return compiled ? runCompiled(compiled, args, ordinary, forget) : ordinary(args);
      }) as unknown as typeof executeFn);
    },
  };
}

/**
 * Only queries: a mutation's resolvers write, and would write twice if its error path ran again.
 * Subscriptions never pass here (onSubscribe), and stay on graphql-js.
 */
function compile(schema: GraphQLSchema, document: DocumentNode, operationName: string | undefined) {
  const operation = getOperationAST(document, operationName);
  if (operation?.operation !== "query") return null;
  try {
    const compiled = compileQuery(schema, document, operationName);
    return isCompiledQuery(compiled) ? compiled : null;
  } catch {
    return null;
  }
}

/**
 * Runs the compiled query; if its result carries any error (or it throws), the ordinary executor
 * answers the request instead, with a context of its own: per-context state (the loaders' caches,
 * the response budget of src/schema/response-budget.ts) starts afresh, as if the first run never
 * happened. Queries only read, so the second run repeats reads, never a write. An operation whose
 * run had errors once (a field over the response budget, a permission it lacks) is likely to have
 * them again: `forget` sends it straight to the ordinary executor from then on, so that its reads
 * are doubled once, not on every request.
 */
function runCompiled(
  compiled: CompiledQuery,
  args: ExecuteArgs,
  ordinary: ExecuteFn,
  forget: () => void,
): unknown {
  const again = () => {
    compiledQueryRuns.again++;
    forget();
    return ordinary({ ...args, contextValue: { ...(args.contextValue as object) } });
  };
  compiledQueryRuns.compiled++;
  let result: ExecutionResult | Promise<ExecutionResult>;
  try {
    result = compiled.query(args.rootValue, args.contextValue, args.variableValues);
  } catch {
    return again();
  }
  const answer = (settled: ExecutionResult) => {
    if (!settled.errors?.length) return settled;
    // A database that is away would fail the second run too, after waiting as long again: the
    // compiled run's errors are answered (as 503, src/server/errors.ts) within the timeouts that
    // docs/operations.md promises.
    if (settled.errors.some(isDatabaseUnavailable)) return settled;
    return again();
  };
  if (isPromiseLike(result)) return result.then(answer, () => again());
  return answer(result);
}

function isPromiseLike<T>(value: T | Promise<T>): value is Promise<T> {
  return typeof (value as { then?: unknown }).then === "function";
}
