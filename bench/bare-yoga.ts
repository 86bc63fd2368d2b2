// The framework ceiling for bench/run.ts: graphql-yoga on node:http with a one-field schema and
// nothing else, answering `{ __typename }`. PORT from the environment.
import { createServer } from "node:http";
import { createSchema, createYoga } from "graphql-yoga";

const yoga = createYoga({
  schema: createSchema({ typeDefs: "type Query { ok: Boolean! }", resolvers: { Query: { ok: () => true } } }),
  graphqlEndpoint: "/graphql",
  graphiql: false,
  landingPage: false,
  logging: false,
});
const server = createServer(yoga);
server.listen(Number(process.env.PORT), "127.0.0.1");
for (const signal of ["SIGINT", "SIGTERM"] as const)
  process.once(signal, () => server.close(() => process.exit(0)));
