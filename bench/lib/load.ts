// HTTP load with autocannon: a warm-up, then a timed run whose every response is checked for GraphQL
// errors (a 200 with "errors" is a failure here, not a success).
import autocannon from "autocannon";

export interface GraphQLRequest {
  query: string;
  variables?: Record<string, unknown>;
}

export interface LoadOptions {
  url: string;
  headers: Record<string, string>;
  /** One request, or a function giving the n-th (bodies that change per request). */
  request: GraphQLRequest | ((n: number) => GraphQLRequest);
  connections: number;
  seconds: number;
  warmupSeconds: number;
}

export interface LoadResult {
  requests: number;
  throughput: number;
  p50: number;
  p99: number;
  /** Connection errors, non-2xx answers and answers carrying GraphQL errors. */
  failures: number;
}

export async function runLoad(options: LoadOptions): Promise<LoadResult> {
  if (options.warmupSeconds > 0) await once({ ...options, seconds: options.warmupSeconds });
  return once(options);
}

async function once(options: LoadOptions): Promise<LoadResult> {
  let n = 0;
  let graphqlErrors = 0;
  const body = (request: GraphQLRequest) => JSON.stringify(request);
  const fixed = typeof options.request === "function" ? undefined : body(options.request);
  const next = options.request;
  const result = await autocannon({
    url: `${options.url}/graphql`,
    connections: options.connections,
    duration: options.seconds,
    method: "POST",
    headers: { "content-type": "application/json", ...options.headers },
    requests: [
      {
        method: "POST",
        ...(fixed === undefined
          ? {
              setupRequest: (request) => ({
                ...request,
                body: body((next as (n: number) => GraphQLRequest)(n++)),
              }),
            }
          : { body: fixed }),
        onResponse: (status, responseBody) => {
          if (status === 200 && responseBody.includes('"errors"')) graphqlErrors++;
        },
      } as autocannon.Request,
    ],
  });
  return {
    requests: result.requests.total,
    throughput: result.requests.total / options.seconds,
    p50: result.latency.p50,
    p99: result.latency.p99,
    failures: result.errors + result.timeouts + result.non2xx + graphqlErrors,
  };
}

/** One request, answered with data and no errors, or a thrown error saying what came back. */
export async function graphql<T = any>(
  url: string,
  headers: Record<string, string>,
  request: GraphQLRequest,
): Promise<T> {
  const response = await fetch(`${url}/graphql`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify(request),
  });
  const text = await response.text();
  let parsed: { data?: T; errors?: unknown[] };
  try {
    parsed = JSON.parse(text) as typeof parsed;
  } catch {
    throw new Error(`${url}: HTTP ${response.status}: ${text.slice(0, 500)}`);
  }
  if (!response.ok || parsed.errors?.length || parsed.data === undefined) {
    throw new Error(`${url}: HTTP ${response.status}: ${text.slice(0, 500)}`);
  }
  return parsed.data;
}
