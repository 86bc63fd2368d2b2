// `npm run cli -- <command>` / `npx mailroom <command>`. Works with or without a running server:
// with the embedded database it connects to the instance a running server started.
import { randomBytes } from "node:crypto";
import { parseArgs } from "node:util";
import { encodeGlobalID } from "@pothos/plugin-relay";
import { ConfigError, loadConfig } from "./config.ts";
import { createDatabase } from "./db/database.ts";
import { startEmbeddedPostgres } from "./db/embedded.ts";
import { migrateToLatest } from "./db/migrate.ts";
import { runStdioBridge, type StdioSettings, StdioSettingsError, stdioSettings } from "./mcp/stdio.ts";
import { bootstrapOrganization } from "./organizations/service.ts";

const USAGE = `Usage:
  mailroom bootstrap --org NAME --admin-email EMAIL [--admin-password-stdin | --admin-password PASSWORD] [--json]
      Creates an organization, its first administrator and an organization-scoped API key,
      and prints the key once. --admin-password-stdin reads the password from the first line of
      standard input (nothing echoes it; npm prints --admin-password's value with the command).
      With neither, a random password is generated and printed once.
  mailroom mcp
      Speaks the Model Context Protocol on stdin/stdout, for MCP clients that start a command:
      the tools of a running server (MAILROOM_URL, default http://127.0.0.1:4000) with the key
      in MAILROOM_API_KEY. See docs/mcp.md.`;

/** The first line of standard input, without its line ending. */
async function readFirstLine(): Promise<string> {
  let text = "";
  for await (const chunk of process.stdin) {
    text += String(chunk);
    if (text.includes("\n") || text.length > 4096) break;
  }
  process.stdin.destroy();
  return (text.split(/\r?\n/)[0] ?? "").slice(0, 4096);
}

async function bootstrap(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      org: { type: "string" },
      "admin-email": { type: "string" },
      "admin-password": { type: "string" },
      "admin-password-stdin": { type: "boolean", default: false },
      json: { type: "boolean", default: false },
    },
    strict: true,
  });
  const org = values.org?.trim();
  const email = values["admin-email"]?.trim();
  if (!org || !email) throw new UsageError("bootstrap needs --org and --admin-email");
  if (!/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(email))
    throw new UsageError(`--admin-email is not an email address: ${email}`);
  if (values["admin-password-stdin"] && values["admin-password"] !== undefined)
    throw new UsageError("give --admin-password-stdin or --admin-password, not both");
  let givenPassword = values["admin-password"];
  if (values["admin-password-stdin"]) {
    givenPassword = await readFirstLine();
    if (givenPassword === "")
      throw new UsageError("--admin-password-stdin read no password from standard input");
  }
  const generatedPassword = givenPassword === undefined ? randomBytes(18).toString("base64url") : undefined;

  const config = loadConfig();
  const embedded = config.databaseUrl ? undefined : await startEmbeddedPostgres({ dataDir: config.dataDir });
  const database = createDatabase(config.databaseUrl ?? (embedded?.url as string), {
    max: 2,
    preparedStatements: config.databasePreparedStatements,
  });
  try {
    await migrateToLatest(database.db);
    const result = await bootstrapOrganization(
      { db: database.db, config },
      {
        name: org,
        adminEmail: email,
        adminPassword: givenPassword ?? (generatedPassword as string),
      },
    );
    const organizationId = encodeGlobalID("Organization", result.organizationId);
    if (values.json) {
      const out: Record<string, string> = {
        organizationId,
        apiKey: result.apiKey,
        adminEmail: result.adminEmail,
      };
      if (generatedPassword) out.adminPassword = generatedPassword;
      process.stdout.write(`${JSON.stringify(out)}\n`);
    } else {
      process.stdout.write(
        [
          `Organization ${org} created (${organizationId}).`,
          `Administrator: ${result.adminEmail}${generatedPassword ? ` (password: ${generatedPassword})` : ""}`,
          `Organization API key (shown once, store it now):`,
          `  ${result.apiKey}`,
          "",
        ].join("\n"),
      );
    }
  } finally {
    await database.destroy();
    await embedded?.stop();
  }
}

class UsageError extends Error {}

async function mcp(): Promise<void> {
  let settings: StdioSettings;
  try {
    settings = stdioSettings(process.env);
  } catch (error) {
    if (error instanceof StdioSettingsError) throw new UsageError(error.message);
    throw error;
  }
  await runStdioBridge(settings);
  process.exit(0);
}

const [command, ...rest] = process.argv.slice(2);
try {
  if (command === "bootstrap") await bootstrap(rest);
  else if (command === "mcp") await mcp();
  else if (command === undefined || command === "help" || command === "--help")
    process.stdout.write(`${USAGE}\n`);
  else throw new UsageError(`unknown command: ${command}`);
} catch (error) {
  if (
    error instanceof UsageError ||
    error instanceof ConfigError ||
    (error as { code?: string }).code === "ERR_PARSE_ARGS_UNKNOWN_OPTION"
  ) {
    process.stderr.write(`${(error as Error).message}\n\n${USAGE}\n`);
    process.exit(2);
  }
  const message =
    (error as { extensions?: { code?: string } }).extensions?.code === "BAD_USER_INPUT"
      ? (error as Error).message
      : String((error as Error).stack ?? error);
  process.stderr.write(`${command} failed: ${message}\n`);
  process.exit(1);
}
