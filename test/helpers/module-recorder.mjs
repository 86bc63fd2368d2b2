// Preloaded with `--import` by test/tracing.test.ts: at exit, prints on stderr one line
// `loaded-modules {…}` with how many modules the process resolved and those of OpenTelemetry.
// ESM imports are seen by a resolve hook (module-recorder-hooks.mjs); CommonJS ones in require.cache.
import { createRequire, register } from "node:module";
import { MessageChannel } from "node:worker_threads";

const OTEL = /[\\/]@opentelemetry[\\/]|[\\/]@envelop[\\/]opentelemetry[\\/]/;
const { port1, port2 } = new MessageChannel();
const resolved = [];
port1.on("message", (url) => resolved.push(url));
port1.unref();
register("./module-recorder-hooks.mjs", import.meta.url, { data: { port: port2 }, transferList: [port2] });

process.on("exit", () => {
  const required = Object.keys(createRequire(import.meta.url).cache);
  const all = [...resolved, ...required];
  const report = {
    count: all.length,
    yoga: all.some((url) => url.includes("graphql-yoga")),
    otel: all.filter((url) => OTEL.test(url)),
  };
  process.stderr.write(`loaded-modules ${JSON.stringify(report)}\n`);
});
