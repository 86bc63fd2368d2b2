// OpenTelemetry traces (docs/operations.md, "Traces"): `npm start`'s command with
// OTEL_EXPORTER_OTLP_ENDPOINT at a receiver of this file's own sends one trace per request, HTTP span
// → GraphQL operation → SQL, with no credential and no value; without the variable it loads nothing of
// OpenTelemetry.
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../src/config.ts";
import { ROOT, startServerProcess } from "./helpers/process.ts";
import { databaseSuite, organizationFixture, running } from "./helpers/suite.ts";

interface OtlpValue {
  stringValue?: string;
  intValue?: string | number;
}
interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  attributes?: { key: string; value: OtlpValue }[];
}
interface OtlpRequest {
  resourceSpans: {
    resource?: { attributes?: { key: string; value: OtlpValue }[] };
    scopeSpans: { scope?: { name: string }; spans: OtlpSpan[] }[];
  }[];
}

/** An OTLP/HTTP traces receiver for the JSON encoding: keeps every request's body. */
class OtlpReceiver {
  readonly bodies: string[] = [];
  readonly contentTypes: string[] = [];
  private server: Server | undefined;
  url = "";

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (chunk: Buffer) => chunks.push(chunk));
      req.on("end", () => {
        if (req.method === "POST" && req.url === "/v1/traces") {
          this.bodies.push(Buffer.concat(chunks).toString("utf8"));
          this.contentTypes.push(String(req.headers["content-type"]));
        }
        res.writeHead(200, { "content-type": "application/json" }).end("{}");
      });
    });
    await new Promise<void>((resolve) => this.server?.listen(0, "127.0.0.1", resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  stop(): Promise<void> {
    return new Promise((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  requests(): OtlpRequest[] {
    return this.bodies.map((body) => JSON.parse(body) as OtlpRequest);
  }

  spans(): OtlpSpan[] {
    return this.requests().flatMap((request) =>
      request.resourceSpans.flatMap((resource) => resource.scopeSpans.flatMap((scope) => scope.spans)),
    );
  }
}

function attribute(span: OtlpSpan, key: string): string | number | undefined {
  const value = span.attributes?.find((one) => one.key === key)?.value;
  return value?.stringValue ?? (value?.intValue === undefined ? undefined : Number(value.intValue));
}

const SERVER_KIND = 2;
const receiver = running(new OtlpReceiver());
const database = databaseSuite();
const org = organizationFixture(database);

async function query(url: string, document: string, variables: Record<string, unknown>, key: string) {
  const response = await fetch(`${url}/graphql`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${key}` },
    body: JSON.stringify({ query: document, variables }),
  });
  return {
    status: response.status,
    requestId: response.headers.get("x-request-id"),
    body: await response.json(),
  };
}

describe("the traces URL", () => {
  it("is OTEL_EXPORTER_OTLP_ENDPOINT's /v1/traces, or the traces endpoint itself; none when disabled", () => {
    expect(loadConfig({}).otlpTracesUrl).toBeUndefined();
    expect(loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318/" }).otlpTracesUrl).toBe(
      "http://collector:4318/v1/traces",
    );
    expect(
      loadConfig({
        OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318",
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "https://traces.example.com/otlp/spans",
      }).otlpTracesUrl,
    ).toBe("https://traces.example.com/otlp/spans");
    expect(
      loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318", OTEL_SDK_DISABLED: "true" })
        .otlpTracesUrl,
    ).toBeUndefined();
    expect(() => loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: "collector:4318" })).toThrow(
      /OTEL_EXPORTER_OTLP_ENDPOINT expected a URL starting with http:\/\/ or https:\/\//,
    );
  });
});

describe("traces", () => {
  it("sends one trace per request: the HTTP span, the GraphQL operation beneath it, the SQL beneath that", async () => {
    const server = await startServerProcess(
      {
        DATABASE_URL: database.url,
        OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
        OTEL_SERVICE_NAME: "mailroom-under-test",
        OTEL_BSP_SCHEDULE_DELAY: "100",
      },
      90_000,
    );
    // A value that reaches SQL as a parameter: it must appear in no span.
    const secretValue = "private-address-7f3a9c@mailroom.localhost";
    const result = await query(
      server.url,
      "query FindInbox($email: String!) { viewer { organization { name } } inbox(email: $email) { id } }",
      { email: secretValue },
      org.apiKey,
    );
    expect(result.status).toBe(200);
    expect(result.body.data.viewer.organization.name).toBe("Acme");
    expect(await fetch(`${server.url}/healthz`).then((response) => response.status)).toBe(200);
    // A graceful stop sends what the batch processor still holds.
    server.child.kill("SIGTERM");
    expect(await server.exited).toBe(0);

    expect(receiver.contentTypes.every((type) => type.startsWith("application/json"))).toBe(true);
    const spans = receiver.spans();
    const operation = spans.find((span) => span.name === "query.FindInbox");
    expect(operation, JSON.stringify(spans.map((span) => span.name))).toBeDefined();
    expect(attribute(operation as OtlpSpan, "graphql.execute.operationName")).toBe("FindInbox");
    const trace = spans.filter((span) => span.traceId === operation?.traceId);
    const byId = new Map(trace.map((span) => [span.spanId, span]));

    const http = byId.get(operation?.parentSpanId ?? "");
    expect(http?.kind).toBe(SERVER_KIND);
    expect(http?.name).toBe("POST /graphql");
    expect(http?.parentSpanId ?? "").toBe("");
    expect(attribute(http as OtlpSpan, "http.response.status_code")).toBe(200);
    expect(attribute(http as OtlpSpan, "mailroom.request_id")).toBe(result.requestId);

    const ancestors = (span: OtlpSpan): string[] => {
      const parent = byId.get(span.parentSpanId ?? "");
      return parent ? [parent.spanId, ...ancestors(parent)] : [];
    };
    // The operation's SQL (its resolvers' statements), with the statement text but no parameter.
    const sql = trace.filter((span) => span.name.startsWith("pg.query"));
    expect(sql.every((span) => attribute(span, "db.system.name") === "postgresql")).toBe(true);
    const underOperation = sql.filter((span) => ancestors(span).includes(operation?.spanId ?? ""));
    expect(underOperation.length).toBeGreaterThan(0);
    expect(underOperation.some((span) => String(attribute(span, "db.query.text")).includes("inboxes"))).toBe(
      true,
    );
    for (const phase of ["graphql.parse", "graphql.validate"]) {
      expect(trace.find((span) => span.name === phase)?.parentSpanId).toBe(http?.spanId);
    }

    // Nothing traced the health probe; nothing carries the key or the value.
    expect(spans.some((span) => String(attribute(span, "url.path")) === "/healthz")).toBe(false);
    const everything = receiver.bodies.join("\n");
    expect(everything).not.toContain(org.apiKey);
    expect(everything).not.toContain(org.apiKey.slice(-12));
    expect(everything).not.toContain(secretValue);
    expect(everything).not.toContain("authorization");
    // The SDK's own variables are honoured.
    const resource = receiver.requests()[0]?.resourceSpans[0]?.resource?.attributes ?? [];
    expect(resource.find((one) => one.key === "service.name")?.value.stringValue).toBe("mailroom-under-test");
  }, 120_000);

  it("loads nothing of OpenTelemetry when OTEL_EXPORTER_OTLP_ENDPOINT is unset", async () => {
    const recorder = pathToFileURL(path.join(ROOT, "test/helpers/module-recorder.mjs")).href;
    const server = await startServerProcess(
      {
        DATABASE_URL: database.url,
        OTEL_EXPORTER_OTLP_ENDPOINT: undefined,
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: undefined,
        NODE_OPTIONS: `--import "${recorder}"`,
      },
      90_000,
    );
    const result = await query(
      server.url,
      "query Viewer { viewer { organization { name } } }",
      {},
      org.apiKey,
    );
    expect(result.body.data.viewer.organization.name).toBe("Acme");
    server.child.kill("SIGTERM");
    expect(await server.exited).toBe(0);
    const line = /loaded-modules (\{.*\})/.exec(server.output())?.[1];
    expect(line, server.output()).toBeDefined();
    const report = JSON.parse(line as string) as { count: number; yoga: boolean; otel: string[] };
    // The recorder saw the process load its modules (so an empty list means something)...
    expect(report.count).toBeGreaterThan(100);
    expect(report.yoga).toBe(true);
    // ...and none of OpenTelemetry's, but for its API package, which prom-client (for /metrics)
    // requires in any case: the no-op API, whose tracer does nothing without an SDK.
    expect(report.otel.filter((url) => !/[\\/]@opentelemetry[\\/]api[\\/]/.test(url))).toEqual([]);
  }, 120_000);
});
