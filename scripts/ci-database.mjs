// For .ci/run: `create URL` prints the URL of a fresh database on that server (exit 3 when the
// server is unreachable); `drop URL` removes it.
import { randomBytes } from "node:crypto";
import pg from "pg";

const [command, url] = process.argv.slice(2);
if (!url || !["create", "drop"].includes(command)) {
  console.error("usage: node scripts/ci-database.mjs create|drop URL");
  process.exit(2);
}
const target = new URL(url);
const admin = new URL(url);
admin.pathname = "/postgres";
const client = new pg.Client({ connectionString: admin.toString(), connectionTimeoutMillis: 3000 });
try {
  await client.connect();
} catch (error) {
  console.error(`PostgreSQL at ${admin.host} is not reachable: ${error.message}`);
  process.exit(3);
}
try {
  if (command === "create") {
    const name = `mailroom_ci_${randomBytes(4).toString("hex")}`;
    await client.query(`CREATE DATABASE ${name}`);
    target.pathname = `/${name}`;
    console.log(target.toString());
  } else {
    const name = target.pathname.slice(1);
    if (!/^mailroom_ci_[0-9a-f]+$/.test(name)) throw new Error(`refusing to drop ${name}`);
    await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  }
} finally {
  await client.end();
}
