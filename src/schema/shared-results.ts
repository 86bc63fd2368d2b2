// Subscription events executed once per audience. Subscribers whose results must be identical (the same
// operation and variables, the same visibility, the same source event object) share one execution of
// each event and its result. An envelop plugin, so graphql-ws and SSE subscriptions both go through it.
import {
  createSourceEventStream,
  type DocumentNode,
  type ExecutionArgs,
  type ExecutionResult,
  execute,
  GraphQLError,
  type GraphQLSchema,
  getOperationAST,
  getVariableValues,
  type OperationDefinitionNode,
} from "graphql";
import type { Plugin } from "graphql-yoga";
import type { AuthenticatedPrincipal } from "../auth/principal.ts";
import { principalFor, visibilityKey, visibilityOf } from "../auth/visibility.ts";
import { streamRequestOf } from "../events/stream.ts";
import { type Context, createContext } from "./context.ts";
import { selectsCredentialBoundField } from "./credential-bound.ts";
import type { FanOut } from "./fan-out.ts";
import { clearLoaders } from "./loaders.ts";

type Result = ExecutionResult | Promise<ExecutionResult>;

export class SharedResults {
  // An event's results live exactly as long as the event object: nothing to expire or bound. Keyed by
  // operation, then visibility: both texts are made once (per subscription, per principal), so a
  // lookup hashes no new string.
  private readonly byEvent = new WeakMap<object, Map<string, Map<string, Result>>>();
  private readonly ids = new WeakMap<DocumentNode | GraphQLSchema, number>();
  private readonly principals = new WeakMap<AuthenticatedPrincipal, AuthenticatedPrincipal>();
  private nextId = 0;
  private executed = 0;

  /**
   * The part of the sharing key a subscription fixes when it starts: schema, document (by identity;
   * yoga's parser cache hands the same text the same object), operation name and variables. `undefined`
   * when its results may depend on more than the key holds, so it must not share.
   */
  operationKey(args: ExecutionArgs): string | undefined {
    const { principal } = args.contextValue as Context;
    if (args.fieldResolver || args.typeResolver || principal.kind === "anonymous") return undefined;
    // A download link belongs to the subscriber's own credential, not to its visibility.
    if (selectsCredentialBoundField(args.schema, args.document)) return undefined;
    let variables: string;
    try {
      // No variables and empty variables coerce alike: one key for both.
      variables = JSON.stringify(args.variableValues ?? {});
    } catch {
      return undefined;
    }
    return JSON.stringify([
      this.idOf(args.schema),
      this.idOf(args.document),
      args.operationName ?? null,
      variables,
    ]);
  }

  /**
   * The result of one event for one subscriber: executed for the first subscriber with this operation
   * and visibility, shared by the others. The visibility is read now, so a refreshed credential counts.
   * Without a key (or for an event that is no object) the subscriber executes it alone, in its own
   * context with its loaders cleared: every event sees fresh data either way.
   */
  resultFor(args: ExecutionArgs, operationKey: string | undefined, event: unknown): Result {
    const context = args.contextValue as Context;
    const { principal, services } = context;
    if (
      operationKey === undefined ||
      typeof event !== "object" ||
      event === null ||
      principal.kind === "anonymous"
    ) {
      this.executed++;
      clearLoaders(context);
      return execute({ ...args, rootValue: event });
    }
    let byOperation = this.byEvent.get(event);
    if (!byOperation) {
      byOperation = new Map();
      this.byEvent.set(event, byOperation);
    }
    let results = byOperation.get(operationKey);
    if (!results) {
      results = new Map();
      byOperation.set(operationKey, results);
    }
    const key = visibilityKey(principal);
    let result = results.get(key);
    if (!result) {
      this.executed++;
      // A context of its own: fresh loaders for this event, and nothing of any one subscriber but what
      // the key holds (no request, no client address, no credential identity).
      const contextValue = createContext(services, this.sharedPrincipal(principal));
      result = execute({ ...args, rootValue: event, contextValue });
      results.set(key, result);
    }
    return result;
  }

  /**
   * One event's result for one subscriber alone (a replay: its events are its own objects, so there is
   * nothing to share and nothing to remember them by), in a context of contextAlone().
   */
  resultAlone(args: ExecutionArgs, event: object, context: Context): Result {
    this.executed++;
    return execute({ ...args, rootValue: event, contextValue: context });
  }

  /**
   * The context replayed events execute in, as `principal`'s visibility alone: one per page of a replay,
   * so that its loaders and per-context caches are made once per page, not per event.
   */
  contextAlone(services: Context["services"], principal: AuthenticatedPrincipal): Context {
    return createContext(services, this.sharedPrincipal(principal));
  }

  /** The principal of `principal`'s visibility alone, made once per principal (principals are immutable). */
  private sharedPrincipal(principal: AuthenticatedPrincipal): AuthenticatedPrincipal {
    let shared = this.principals.get(principal);
    if (!shared) {
      shared = principalFor(visibilityOf(principal));
      this.principals.set(principal, shared);
    }
    return shared;
  }

  /** Event executions so far: a shared one counts once, however many subscribers it served. */
  executions(): number {
    return this.executed;
  }

  private idOf(value: DocumentNode | GraphQLSchema): number {
    let id = this.ids.get(value);
    if (id === undefined) {
      id = this.nextId++;
      this.ids.set(value, id);
    }
    return id;
  }
}

/**
 * Replaces the subscribe step with graphql-js's algorithm (the source event stream, then one execution
 * per event) whose per-event execution goes through `shared`. An operation that cannot start (no such
 * operation, invalid variables) keeps the ordinary path, so its errors stay exactly as they were.
 */
export function useSharedSubscriptionResults(shared: SharedResults, fanOut?: FanOut): Plugin<Context> {
  return {
    onSubscribe({ args, setSubscribeFn }) {
      const operation = getOperationAST(args.document, args.operationName);
      if (operation?.operation !== "subscription") return;
      const variables = getVariableValues(
        args.schema,
        operation.variableDefinitions ?? [],
        args.variableValues ?? {},
      );
      if (variables.errors) return;
      const key = shared.operationKey(args);
      setSubscribeFn(async (subscribeArgs) => {
        const stream = await createSourceEventStream(subscribeArgs);
        if (!isAsyncIterable(stream)) return stream;
        // A WebSocket subscription of the event stream that may share: served by the fan-out, which
        // writes its frames itself (src/schema/fan-out.ts); this stream is never read.
        const request = streamRequestOf(stream);
        const frames = (subscribeArgs.contextValue as Context).frames;
        if (fanOut && key !== undefined && request && frames) {
          await (stream as unknown as AsyncIterator<unknown>).return?.();
          return fanOut.serve(subscribeArgs, key, operation, request, frames);
        }
        return mapEvents(stream, operation, (event) => shared.resultFor(subscribeArgs, key, event));
      });
    },
  };
}

function isAsyncIterable(value: unknown): value is AsyncIterable<unknown> {
  return typeof value === "object" && value !== null && Symbol.asyncIterator in value;
}

/** The source stream mapped to results; like graphql-tools' executor, a failing source is a located error. */
function mapEvents(
  source: AsyncIterable<unknown>,
  operation: OperationDefinitionNode,
  toResult: (event: unknown) => Result,
): AsyncIterableIterator<ExecutionResult> {
  const iterator = source[Symbol.asyncIterator]();
  const finished = { value: undefined, done: true } as const;
  return {
    async next() {
      let step: IteratorResult<unknown>;
      try {
        step = await iterator.next();
      } catch (error) {
        const original = error instanceof Error ? error : new Error(String(error));
        throw new GraphQLError(original.message, { nodes: [operation], originalError: original });
      }
      if (step.done) return finished;
      try {
        return { value: await toResult(step.value), done: false };
      } catch (error) {
        await iterator.return?.();
        throw error;
      }
    },
    async return() {
      await iterator.return?.();
      return finished;
    },
    async throw(error) {
      await iterator.return?.();
      throw error;
    },
    [Symbol.asyncIterator]() {
      return this;
    },
  };
}
