// Test data made through the application's own services and API, never by hand-written SQL.
import { randomBytes } from "node:crypto";
import type { Db } from "../../src/db/database.ts";
import { bootstrapOrganization } from "../../src/organizations/service.ts";
import { ok } from "./server.ts";

export interface TestOrganization {
  organizationId: string;
  apiKey: string;
  adminEmail: string;
  adminPassword: string;
}

export async function createOrganization(db: Db, name = "Acme"): Promise<TestOrganization> {
  const adminEmail = `admin-${randomBytes(4).toString("hex")}@example.test`;
  const adminPassword = "correct horse battery staple";
  const result = await bootstrapOrganization(db, { name, adminEmail, adminPassword });
  return { ...result, adminPassword };
}

export const CREATE_KEY = `mutation($input: CreateApiKeyInput!) {
  createApiKey(input: $input) { secret apiKey { id name prefix scope permissions { inboxRead podRead podCreate apiKeyCreate apiKeyRead } expiresAt } }
}`;

/** A key made through the API by `creatorKey`: what a client would do. */
export async function createKey(
  server: { url: string },
  creatorKey: string,
  input: Record<string, unknown> = {},
): Promise<{ secret: string; id: string; apiKey: Record<string, any> }> {
  const data = await ok(server, CREATE_KEY, { input: { name: "test key", ...input } }, { key: creatorKey });
  return {
    secret: data.createApiKey.secret,
    id: data.createApiKey.apiKey.id,
    apiKey: data.createApiKey.apiKey,
  };
}

export async function createPodViaApi(server: { url: string }, key: string, name = "Pod"): Promise<string> {
  const data = await ok(
    server,
    `mutation($name: String!) { createPod(input: { name: $name }) { pod { id } } }`,
    { name },
    { key },
  );
  return data.createPod.pod.id;
}

export async function createInboxViaApi(
  server: { url: string },
  key: string,
  input: Record<string, unknown>,
): Promise<{ id: string; email: string }> {
  const data = await ok(
    server,
    `mutation($input: CreateInboxInput!) { createInbox(input: $input) { inbox { id email } } }`,
    { input },
    { key },
  );
  return data.createInbox.inbox;
}
