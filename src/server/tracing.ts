// OpenTelemetry traces, on only when OTEL_EXPORTER_OTLP_ENDPOINT is set (docs/operations.md, "Traces"):
// a span per HTTP request, the GraphQL operation's spans beneath it, and the SQL beneath those, sent
// over OTLP/HTTP. Everything of OpenTelemetry is imported here, dynamically, so that a server without
// the variable loads none of it and runs no plugin for it.

import type { IncomingMessage } from "node:http";
import { createRequire } from "node:module";
import type { Plugin } from "graphql-yoga";
import type { Logger } from "../logger.ts";
import { loggablePath } from "./observability.ts";

/** Paths traced by nobody: probes and scrapes every few seconds, GraphiQL's static files. */
const UNTRACED_PATHS = new Set(["/healthz", "/readyz", "/metrics", "/favicon.ico"]);

export interface Tracing {
  /** The yoga plugins that trace each operation; first in the chain, so that they see all of it. */
  readonly plugins: Plugin[];
  /** Sends what is buffered and undoes every patch and global registration start made. */
  shutdown(): Promise<void>;
}

/** The path as a span names it: no query string, download tokens replaced. */
function routeOf(req: IncomingMessage): string {
  return loggablePath(req.url);
}

/** Starts tracing to `tracesUrl`, the OTLP/HTTP traces URL (`…/v1/traces`). */
export async function startTracing(tracesUrl: string, logger: Logger): Promise<Tracing> {
  const [
    api,
    { NodeTracerProvider, BatchSpanProcessor },
    { OTLPTraceExporter },
    { resourceFromAttributes, detectResources, envDetector },
    { registerInstrumentations },
    { HttpInstrumentation },
    { PgInstrumentation },
    { useOpenTelemetry },
  ] = await Promise.all([
    import("@opentelemetry/api"),
    import("@opentelemetry/sdk-trace-node"),
    import("@opentelemetry/exporter-trace-otlp-http"),
    import("@opentelemetry/resources"),
    import("@opentelemetry/instrumentation"),
    import("@opentelemetry/instrumentation-http"),
    import("@opentelemetry/instrumentation-pg"),
    import("@envelop/opentelemetry"),
  ]);

  // OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES (read by envDetector) win over these defaults.
  const resource = resourceFromAttributes({ "service.name": "mailroom" }).merge(
    detectResources({ detectors: [envDetector] }),
  );
  // The exporter reads OTEL_EXPORTER_OTLP_HEADERS, _TIMEOUT and _COMPRESSION itself; the batch
  // processor OTEL_BSP_*; the provider OTEL_TRACES_SAMPLER and its argument.
  const exporter = new OTLPTraceExporter({ url: tracesUrl });
  const provider = new NodeTracerProvider({ resource, spanProcessors: [new BatchSpanProcessor(exporter)] });
  // The AsyncLocalStorage context manager (which makes SQL a child of the operation that ran it)
  // and W3C trace-context propagation (an incoming `traceparent` continues the caller's trace).
  provider.register();

  const unregister = registerInstrumentations({
    tracerProvider: provider,
    instrumentations: [
      new HttpInstrumentation({
        ignoreIncomingRequestHook: (req) => {
          const path = routeOf(req);
          return UNTRACED_PATHS.has(path) || path.startsWith("/graphiql/");
        },
        // Query strings may hold a GET operation's variables; download links carry their token.
        startIncomingSpanHook: (req) => ({
          "url.path": routeOf(req),
          ...((req.url ?? "").includes("?") ? { "url.query": "[redacted]" } : {}),
          "http.route": routeOf(req),
        }),
        requestHook: (span, req) => {
          if ("headers" in req) span.updateName(`${req.method ?? "GET"} ${routeOf(req as IncomingMessage)}`);
        },
        // The same id as the access-log line and the X-Request-Id header, to go from one to the other.
        applyCustomAttributesOnSpan: (span, _req, res) => {
          const id = "getHeader" in res ? res.getHeader("x-request-id") : undefined;
          if (typeof id === "string") span.setAttribute("mailroom.request_id", id);
        },
        // Outgoing calls (webhooks, which run as jobs) would be traces of their own, and their URLs
        // may carry a receiver's secret.
        disableOutgoingRequestInstrumentation: true,
      }),
      new PgInstrumentation({
        // SQL of the job worker's polling and of LISTEN would be a trace every few seconds.
        requireParentSpan: true,
        // Never the statement's parameters: they hold addresses, message text and token hashes.
        enhancedDatabaseReporting: false,
      }),
    ],
  });

  // Mailroom is ESM and may have loaded pg and node:http before this ran (a test starts servers in a
  // process that imported them long ago). Both instrumentations patch prototypes in place, so
  // requiring the modules through the hook they installed now patches the copies everyone uses.
  const require = createRequire(import.meta.url);
  require("http");
  const pg = require("pg") as { Client: { prototype: { query: { __wrapped?: boolean } } } };
  createRequire(require.resolve("pg"))("pg-pool");
  if (!pg.Client.prototype.query.__wrapped) {
    logger.warn({ component: "tracing" }, "the pg instrumentation did not attach: SQL will not be traced");
  }

  const tracer = provider.getTracer("mailroom");
  const phaseSpans: Plugin = {
    onParse() {
      const span = tracer.startSpan("graphql.parse", { kind: api.SpanKind.INTERNAL });
      return ({ result }) => {
        if (result instanceof Error) span.setStatus({ code: api.SpanStatusCode.ERROR });
        span.end();
      };
    },
    onValidate() {
      const span = tracer.startSpan("graphql.validate", { kind: api.SpanKind.INTERNAL });
      return ({ valid }) => {
        if (!valid) span.setStatus({ code: api.SpanStatusCode.ERROR });
        span.end();
      };
    },
  };
  const operationSpans = useOpenTelemetry(
    {
      // Fields beneath the operation would multiply spans by the size of every page; SQL shows the cost.
      resolvers: false,
      // Never the values: variables, results. The document only when it has no inline arguments
      // (the plugin's own rule), since literals in it are values too.
      variables: false,
      result: false,
      document: true,
    },
    provider,
    api.SpanKind.INTERNAL,
    {},
    "mailroom",
  ) as Plugin;
  logger.info({ component: "tracing", url: tracesUrl }, "sending traces over OTLP/HTTP");

  return {
    plugins: [phaseSpans, operationSpans],
    async shutdown() {
      unregister();
      try {
        await provider.shutdown();
      } catch (error) {
        logger.warn({ component: "tracing", err: error }, "sending the last spans failed");
      }
      api.trace.disable();
      api.context.disable();
      api.propagation.disable();
    },
  };
}
