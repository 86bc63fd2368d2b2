// Real subscription clients: graphql-ws over a WebSocket, and SSE over HTTP, as a client sends them.
import { type Client, type ClientOptions, createClient } from "graphql-ws";
import WebSocket from "ws";

export interface Subscriber<T = any> {
  /** The data of each result that had no errors. */
  received: T[];
  /** Every result exactly as it arrived, data and errors. */
  results: { data?: T | null; errors?: any[] }[];
  errors: unknown[];
  completed: boolean;
  closedCode?: number;
  /** Resolves once `count` error-free results arrived (rejects after `timeoutMs`). */
  waitFor(count: number, timeoutMs?: number): Promise<T[]>;
  /** Resolves once `count` results arrived, with or without errors. */
  waitForResults(count: number, timeoutMs?: number): Promise<Subscriber<T>["results"]>;
  dispose(): Promise<void>;
}

async function until(check: () => boolean, timeoutMs: number, what: () => string) {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what()}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** A subscriber's shared state: what arrived, and waiting for it. */
function newSubscriber<T>(dispose: () => Promise<void>): Subscriber<T> {
  /** Resolves with `list` once it holds `count` items or the subscription completed. */
  const waitForLength = async <L>(list: L[], count: number, timeoutMs: number, noun: string) => {
    await until(
      () => list.length >= count || state.completed,
      timeoutMs,
      () => `${count} ${noun}, got ${list.length}`,
    );
    return list;
  };
  const state: Subscriber<T> = {
    received: [],
    results: [],
    errors: [],
    completed: false,
    waitFor: (count, timeoutMs = 5000) => waitForLength(state.received, count, timeoutMs, "events"),
    waitForResults: (count, timeoutMs = 5000) => waitForLength(state.results, count, timeoutMs, "results"),
    dispose,
  };
  return state;
}

/** One result as it arrived, over either transport. */
function record<T>(state: Subscriber<T>, result: Subscriber<T>["results"][number]): void {
  state.results.push(result);
  if (result.errors) state.errors.push(...result.errors);
  else state.received.push(result.data as T);
}

/**
 * A graphql-ws client that connects at once and never retries, so that a refusal shows instead of
 * being retried away. `authorization` goes in connection_init (left out: no credentials at all).
 */
export function eagerWsClient(
  wsUrl: string,
  authorization: string | undefined,
  on: ClientOptions["on"],
): Client {
  return createClient({
    url: wsUrl,
    webSocketImpl: WebSocket,
    lazy: false,
    retryAttempts: 0,
    onNonLazyError: () => {},
    connectionParams: authorization === undefined ? {} : { Authorization: authorization },
    on,
  });
}

export async function wsSubscribe<T = any>(
  wsUrl: string,
  key: string,
  query: string,
  variables: Record<string, unknown> = {},
): Promise<Subscriber<T>> {
  const state = newSubscriber<T>(async () => {
    unsubscribe();
    await client.dispose();
  });
  let acknowledged = false;
  const client = eagerWsClient(wsUrl, `Bearer ${key}`, {
    connected: () => {
      acknowledged = true;
    },
    closed: (event) => {
      state.closedCode = (event as { code: number }).code;
    },
  });
  const unsubscribe = client.subscribe<T>(
    { query, variables },
    {
      next: (value) => record(state, value as Subscriber<T>["results"][number]),
      error: (error) => {
        state.errors.push(error);
        state.completed = true;
      },
      complete: () => {
        state.completed = true;
      },
    },
  );
  await until(
    () => acknowledged || state.closedCode !== undefined,
    5000,
    () => "the connection",
  );
  // The server subscribes to the bus before it answers the first event; give it a moment to register.
  await new Promise((r) => setTimeout(r, 100));
  return state;
}

/** A subscription over SSE (yoga's GraphQL over SSE, "distinct connections" mode). */
export async function sseSubscribe<T = any>(
  url: string,
  key: string,
  query: string,
  variables: Record<string, unknown> = {},
): Promise<Subscriber<T>> {
  const controller = new AbortController();
  const response = await fetch(`${url}/graphql`, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      accept: "text/event-stream",
      authorization: `Bearer ${key}`,
    },
    body: JSON.stringify({ query, variables }),
    signal: controller.signal,
  });
  const state = newSubscriber<T>(async () => controller.abort());
  const reader = response.body?.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  (async () => {
    try {
      for (;;) {
        const { done, value } = (await reader?.read()) ?? { done: true, value: undefined };
        if (done) break;
        buffer += decoder.decode(value, { stream: true });
        let index = buffer.indexOf("\n\n");
        while (index >= 0) {
          const block = buffer.slice(0, index);
          buffer = buffer.slice(index + 2);
          const event = /^event: (\w+)/m.exec(block)?.[1];
          const data = block
            .split("\n")
            .filter((line) => line.startsWith("data:"))
            .map((line) => line.slice(5).trim())
            .join("\n");
          if (event === "complete") state.completed = true;
          else if (data) record(state, JSON.parse(data));
          index = buffer.indexOf("\n\n");
        }
      }
    } catch {
      // aborted
    }
    state.completed = true;
  })();
  await new Promise((r) => setTimeout(r, 150));
  return state;
}
