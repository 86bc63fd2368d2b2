// `node bench/postgraphile/server.mjs`: PostGraphile v5 as a library on node:http (see graphile.config.mjs).
import { createServer } from "node:http";
import { postgraphile } from "postgraphile";
import { grafserv } from "postgraphile/grafserv/node";
import { preset } from "./graphile.config.mjs";

const pgl = postgraphile(preset);
const serv = pgl.createServ(grafserv);
const server = createServer();
server.on("error", (error) => {
  console.error(error);
  process.exit(1);
});
await serv.addTo(server);
server.listen(preset.grafserv.port, preset.grafserv.host, () => console.log("postgraphile ready"));
for (const signal of ["SIGINT", "SIGTERM"]) {
  process.once(signal, () => {
    server.close();
    pgl.release().then(() => process.exit(0));
  });
}
