import { encodeGlobalID } from "@pothos/plugin-relay";
import { agentSignUp, agentVerify } from "../agents/service.ts";
import type { ApiKeyPrincipal } from "../auth/principal.ts";
import { enforceSensitiveLimit } from "../auth/rate-limit.ts";
import { badUserInput } from "../errors.ts";
import { builder } from "./builder.ts";

const AgentSignUpInput = builder.inputType("AgentSignUpInput", {
  fields: (t) => ({
    humanEmail: t.string({ required: true, description: "Where the verification code is mailed." }),
    username: t.string({ required: true, description: "The inbox: username@MAIL_DOMAIN." }),
  }),
});

const AgentSignUpPayload = builder.simpleObject("AgentSignUpPayload", {
  fields: (t) => ({
    organizationId: t.id(),
    inboxId: t.id(),
    apiKey: t.string({ description: "An organization key. Shown once." }),
  }),
});

builder.mutationField("agentSignUp", (t) =>
  t.field({
    type: AgentSignUpPayload,
    nullable: true,
    description:
      "Public. Creates an unverified organization, its inbox and a key, and mails a 6-digit code to humanEmail. " +
      "Called again with the same humanEmail (while unverified) it rotates the key and resends an expired code.",
    args: { input: t.arg({ type: AgentSignUpInput, required: true }) },
    resolve: async (_root, { input }, context) => {
      await enforceSensitiveLimit(context, "agentSignUp", input.humanEmail.trim().toLowerCase());
      const result = await agentSignUp(context.services, input.humanEmail, input.username);
      return {
        organizationId: encodeGlobalID("Organization", result.organizationId),
        inboxId: encodeGlobalID("Inbox", result.inboxId),
        apiKey: result.apiKey,
      };
    },
  }),
);

const AgentVerifyInput = builder.inputType("AgentVerifyInput", {
  fields: (t) => ({ otpCode: t.string({ required: true }) }),
});

const AgentVerifyPayload = builder.simpleObject("AgentVerifyPayload", {
  fields: (t) => ({ verified: t.boolean() }),
});

builder.mutationField("agentVerify", (t) =>
  t.field({
    type: AgentVerifyPayload,
    nullable: true,
    description: "With the agent's key: the code from the mail. Valid 24 hours, at most 10 attempts.",
    authScopes: { authenticated: true },
    args: { input: t.arg({ type: AgentVerifyInput, required: true }) },
    resolve: async (_root, { input }, context) => {
      if (context.principal.kind !== "apiKey") throw badUserInput("agentVerify takes the agent's API key.");
      const principal = context.principal as ApiKeyPrincipal;
      await enforceSensitiveLimit(context, "agentVerify", principal.apiKeyId);
      await agentVerify(context.services, principal, input.otpCode);
      return { verified: true };
    },
  }),
);
