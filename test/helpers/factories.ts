// Test data made through the application's own services and API, never by hand-written SQL.
import { randomBytes } from "node:crypto";
import type { Db } from "../../src/db/database.ts";
import { bootstrapOrganization } from "../../src/organizations/service.ts";

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
