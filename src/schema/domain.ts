import { checksFromJson, type DnsRecord, expectedRecords } from "../domains/records.ts";
import { type Domain, domainsByIds, listDomains } from "../domains/repository.ts";
import { createDomain, removeDomain, verifyDomain } from "../domains/service.ts";
import { builder, requires } from "./builder.ts";
import { connectionOf, isIdKey, keysetConnection } from "./connection.ts";
import { scopeOf } from "./context.ts";
import { DeleteInputRef, DeletePayloadRef } from "./delete.ts";
import { decodeId, optionalId } from "./global-id.ts";
import { inIdOrder, loadableNodeRef } from "./loaders.ts";
import { PodRef } from "./pod.ts";

export const DomainStatusEnum = builder.enumType("DomainStatus", {
  values: {
    PENDING: { description: "Not checked yet: publish the records, then call verifyDomain." },
    VERIFIED: { description: "MX, SPF and DKIM match: inboxes and signed mail may use the domain." },
    FAILED: {
      description: "The last check found a required record missing or wrong; see records and lastError.",
    },
  } as const,
});

const DnsRecordTypeEnum = builder.enumType("DnsRecordType", { values: ["MX", "TXT"] as const });

const DnsRecordPurposeEnum = builder.enumType("DnsRecordPurpose", {
  values: ["MX", "SPF", "DKIM", "DMARC"] as const,
});

const DnsRecordStatusEnum = builder.enumType("DnsRecordStatus", {
  values: {
    PENDING: { description: "Not checked yet." },
    VERIFIED: { description: "DNS has the expected record." },
    MISSING: { description: "DNS has no such record." },
    INVALID: { description: "DNS has records there, but none with the expected value (see found)." },
    ERROR: { description: "The lookup itself failed (timeout, server failure); try again." },
  } as const,
});

const DnsRecordRef = builder.objectRef<DnsRecord>("DnsRecord").implement({
  description: "A record to publish in the domain's DNS zone, with the result of the last check.",
  fields: (t) => ({
    purpose: t.field({ type: DnsRecordPurposeEnum, resolve: (record) => record.purpose }),
    type: t.field({ type: DnsRecordTypeEnum, resolve: (record) => record.type }),
    name: t.exposeString("name", { description: "The fully qualified record name." }),
    value: t.exposeString("value", {
      description:
        "For MX the mail host; for TXT the whole value (split it into 255-character strings if your DNS host asks).",
    }),
    priority: t.exposeInt("priority", { nullable: true, description: "MX only." }),
    required: t.exposeBoolean("required", {
      description: "false: recommended (DMARC), not needed to verify.",
    }),
    status: t.field({ type: DnsRecordStatusEnum, resolve: (record) => record.status }),
    verified: t.boolean({ resolve: (record) => record.status === "VERIFIED" }),
    found: t.exposeStringList("found", { description: "What DNS returned at the last check." }),
  }),
});

export const DomainRef = loadableNodeRef<Domain, string, string>("Domain", {
  id: { resolve: (domain) => domain.id },
  load: async (ids, context) =>
    inIdOrder(ids, await domainsByIds(context.services.db, scopeOf(context), ids), "Domain"),
});

DomainRef.implement({
  description: "A custom domain for inboxes and DKIM-signed mail. Its DKIM private key is never exposed.",
  fields: (t) => ({
    domain: t.exposeString("domain"),
    pod: t.field({
      type: PodRef,
      nullable: true,
      description: "null: shared by every pod of the organization (read-only for pod-scoped keys).",
      resolve: (domain) => domain.pod_id,
    }),
    status: t.field({ type: DomainStatusEnum, resolve: (domain) => domain.status }),
    records: t.field({
      type: [DnsRecordRef],
      resolve: (domain, _args, context) =>
        expectedRecords(context.services.config, domain, checksFromJson(domain.dns_checks)),
    }),
    lastError: t.exposeString("last_error", {
      nullable: true,
      description: "Why the last verification failed.",
    }),
    verifiedAt: t.field({
      type: "DateTime",
      nullable: true,
      description: "When the domain was first verified.",
      resolve: (domain) => domain.verified_at,
    }),
    lastCheckedAt: t.field({ type: "DateTime", nullable: true, resolve: (domain) => domain.last_checked_at }),
    createdAt: t.field({ type: "DateTime", resolve: (domain) => domain.created_at }),
  }),
});

builder.queryField("domains", (t) =>
  t.connection(
    {
      type: DomainRef,
      ...requires("DOMAIN_READ"),
      description: "Newest first. A pod-scoped caller sees its pod's domains and those shared by all pods.",
      resolve: (_root, args, context) =>
        keysetConnection(
          args,
          (domain: Domain) => domain.id,
          isIdKey,
          (page) => listDomains(context.services.db, scopeOf(context), page),
        ),
    },
    connectionOf(DomainRef),
  ),
);

const CreateDomainInput = builder.inputType("CreateDomainInput", {
  fields: (t) => ({
    domain: t.string({
      required: true,
      description: "e.g. mail.example.com; unique across all organizations.",
    }),
    podId: t.id({
      description:
        "The pod that owns it. Omitted: shared by every pod (organization-wide callers) or the caller's pod.",
    }),
  }),
});

const VerifyDomainInput = builder.inputType("VerifyDomainInput", {
  fields: (t) => ({ id: t.id({ required: true }) }),
});

const DomainPayload = builder.simpleObject("DomainPayload", {
  fields: (t) => ({ domain: t.field({ type: DomainRef }) }),
});

builder.mutationFields((t) => ({
  createDomain: t.field({
    type: DomainPayload,
    ...requires("DOMAIN_CREATE"),
    description: "Registers a domain and its DKIM key; publish its records, then call verifyDomain.",
    args: { input: t.arg({ type: CreateDomainInput, required: true }) },
    resolve: async (_root, { input }, context) => ({
      domain: await createDomain(context.services, scopeOf(context), {
        domain: input.domain,
        podId: optionalId(input.podId, "Pod"),
      }),
    }),
  }),
  verifyDomain: t.field({
    type: DomainPayload,
    ...requires("DOMAIN_UPDATE"),
    description:
      "Checks the domain's DNS records now. Shared domains are changed by organization-wide callers only.",
    args: { input: t.arg({ type: VerifyDomainInput, required: true }) },
    resolve: async (_root, { input }, context) => ({
      domain: await verifyDomain(context.services, scopeOf(context), decodeId(String(input.id), "Domain")),
    }),
  }),
  deleteDomain: t.field({
    type: DeletePayloadRef,
    ...requires("DOMAIN_DELETE"),
    description: "Refused (CONFLICT) while inboxes have addresses on the domain.",
    args: { input: t.arg({ type: DeleteInputRef, required: true }) },
    resolve: async (_root, { input }, context) => {
      await removeDomain(context.services, scopeOf(context), decodeId(String(input.id), "Domain"));
      return { deletedId: input.id };
    },
  }),
}));
