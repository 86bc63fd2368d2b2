// Agent sign-up (docs/permissions.md, "Agent sign-up"): an agent creates an unverified organization, an inbox and a key;
// a human proves the agent may act by reading a code mailed to them and handing it back.
import { randomInt } from "node:crypto";
import { hash as argon2Hash, verify as argon2Verify } from "@node-rs/argon2";
import { GraphQLError } from "graphql";
import MailComposer from "nodemailer/lib/mail-composer/index.js";
import { deleteApiKey } from "../api-keys/repository.ts";
import { mintOrganizationKey } from "../api-keys/service.ts";
import { notifyAuthChange } from "../auth/authenticator.ts";
import { type ApiKeyPrincipal, organizationScope } from "../auth/principal.ts";
import { uniqueViolation } from "../db/errors.ts";
import { verifiedOwnerOf } from "../domains/repository.ts";
import { badUserInput, conflict } from "../errors.ts";
import { insertInbox } from "../inboxes/repository.ts";
import { assertNotReserved, validateUsername } from "../inboxes/service.ts";
import { domainOf, systemSender } from "../mail/addresses.ts";
import { insertOrganization } from "../organizations/repository.ts";
import { setOrganizationStatus } from "../organizations/service.ts";
import { captureOutbound, outboundRoute } from "../outbound/capture.ts";
import { type RelayOutcome, relayAttempt, relayDeadlines } from "../outbound/relay.ts";
import { insertPod } from "../pods/repository.ts";
import type { Services } from "../services.ts";
import { normaliseEmail } from "../users/service.ts";
import {
  countAttempt,
  insertSignup,
  lockedSignupByHumanEmail,
  signupOfOrganization,
  updateSignup,
} from "./repository.ts";

export const OTP_TTL_MS = 24 * 60 * 60 * 1000;
export const MAX_OTP_ATTEMPTS = 10;
const EMAIL = /^[^\s@<>()[\]\\,;:"]+@[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)+$/;

export interface SignUpResult {
  organizationId: string;
  inboxId: string;
  apiKey: string;
}

/** A 6-digit code from the CSPRNG (uniform: randomInt rejects biased draws). */
export function newOtp(): string {
  return String(randomInt(0, 1_000_000)).padStart(6, "0");
}

/**
 * Mails the code from the system address through the relay, never through any inbox of this
 * service: a code an agent could read in its own mail (sent or received) would prove nothing.
 */
async function mailCode(services: Services, to: string, code: string): Promise<void> {
  const { config } = services;
  const from = systemSender(config);
  const raw = await new MailComposer({
    from: `Mailroom <${from}>`,
    to,
    subject: `Your Mailroom verification code: ${code}`,
    text: `An agent signed up for Mailroom and named you as its human.\n\nIts verification code is ${code}. It is valid for 24 hours.\n\nIf you did not expect this, ignore this message: without the code the agent stays limited to writing to you.\n`,
  })
    .compile()
    .build();
  const route = outboundRoute(config);
  if (route === "capture") {
    // Local mail: the code is in the log (docs/mail.md), where the developer running this reads it.
    await captureOutbound(config, services.logger, { from, to: [to] }, raw, "a sign-up code");
    return;
  }
  if (route === "refuse" || !config.smtpRelayUrl) throw noRelay();
  // Bounded like every relay attempt: a relay that never greets cannot hold the request for long.
  let outcome: RelayOutcome;
  try {
    outcome = await relayAttempt(
      config.smtpRelayUrl,
      { from, to: [to] },
      raw,
      undefined,
      relayDeadlines(config),
    );
  } catch (error) {
    services.logger.warn({ err: error }, "the relay did not take a sign-up code");
    throw relayUnavailable();
  }
  if (outcome.rejected.length > 0) {
    throw badUserInput(`The relay refused humanEmail: ${outcome.reasons.join("; ")}`, "humanEmail");
  }
}

/** The relay is down or too slow: nothing the caller did wrong; it may try again shortly. */
function relayUnavailable(): GraphQLError {
  return new GraphQLError("The mail relay cannot take the verification code right now. Try again later.", {
    extensions: { code: "SERVICE_UNAVAILABLE", http: { status: 503, headers: { "Retry-After": "60" } } },
  });
}

const noRelay = () =>
  badUserInput(
    "This server mails nothing to outside addresses (no SMTP_RELAY_URL), so it cannot mail the code to humanEmail.",
    "humanEmail",
  );

export async function agentSignUp(
  services: Services,
  humanEmailInput: string,
  usernameInput: string,
): Promise<SignUpResult> {
  const { db, config } = services;
  const humanEmail = normaliseEmail(humanEmailInput);
  if (!EMAIL.test(humanEmail) || humanEmail.length > 254)
    throw badUserInput("humanEmail is not an email address.", "humanEmail");
  // A code mailed to an address this server receives mail for would land in an inbox some agent can
  // read (perhaps this one): the human must be outside. Unverified claims do not count, or anyone
  // could block sign-ups for a public mail provider's domain by adding it.
  const humanDomain = domainOf(humanEmail);
  if (humanDomain === config.mailDomain || (await verifiedOwnerOf(db, humanDomain)) !== undefined) {
    throw badUserInput(
      `humanEmail must be a person's address outside this service: ${humanDomain} receives its mail here.`,
      "humanEmail",
    );
  }
  const username = validateUsername(usernameInput);
  assertNotReserved(config, username, config.mailDomain);
  if (outboundRoute(config) === "refuse") throw noRelay();
  const now = services.clock.now();

  const outcome = await db.transaction().execute(async (trx) => {
    const existing = await lockedSignupByHumanEmail(trx, humanEmail);
    if (existing) {
      // Rotation hands a new organization key to whoever knows the human's email: only while the
      // organization is unverified, as the lost-key recovery it is meant to be.
      if (existing.status !== "AGENT_UNVERIFIED") {
        throw conflict(
          "This human already verified an agent; sign in and create keys instead.",
          "humanEmail",
        );
      }
      if (existing.api_key_id !== null) {
        await deleteApiKey(trx, organizationScope(existing.org_id), existing.api_key_id);
        await notifyAuthChange(trx, { kind: "apiKey", orgId: existing.org_id, id: existing.api_key_id });
      }
      const key = await mintOrganizationKey(trx, existing.org_id, {
        name: "agent",
        pepper: config.tokenPepper,
      });
      const expired = existing.otp_expires_at === null || existing.otp_expires_at.getTime() <= now.getTime();
      const code = expired ? newOtp() : undefined;
      await updateSignup(
        trx,
        existing.org_id,
        existing.id,
        { apiKeyId: key.id, ...(code ? { otp: await otpRecord(code, now) } : {}) },
        now,
      );
      return {
        orgId: existing.org_id,
        inboxId: existing.inbox_id as string,
        key,
        code,
        revoked: existing.api_key_id,
        signupId: existing.id,
      };
    }

    const orgId = await insertOrganization(trx, username, "AGENT_UNVERIFIED");
    const pod = await insertPod(trx, orgId, "default", null);
    let inboxId: string;
    try {
      const inbox = await insertInbox(trx, {
        org_id: orgId,
        pod_id: pod.id,
        username,
        domain: config.mailDomain,
        display_name: null,
        client_id: null,
      });
      inboxId = inbox.id;
    } catch (error) {
      if (uniqueViolation(error) !== undefined)
        throw conflict(`${username}@${config.mailDomain} is taken.`, "username");
      throw error;
    }
    const key = await mintOrganizationKey(trx, orgId, { name: "agent", pepper: config.tokenPepper });
    const code = newOtp();
    const otp = await otpRecord(code, now);
    const signupId = await insertSignup(trx, {
      orgId,
      humanEmail,
      username,
      inboxId,
      apiKeyId: key.id,
      otpHash: otp.hash,
      otpExpiresAt: otp.expiresAt,
    });
    return { orgId, inboxId, key, code, revoked: null, signupId };
  });

  if (outcome.revoked !== null)
    services.authenticator.invalidate({ kind: "apiKey", orgId: outcome.orgId, id: outcome.revoked });
  if (outcome.code) {
    try {
      await mailCode(services, humanEmail, outcome.code);
    } catch (error) {
      // Not mailed: expire it, so the next sign-up call sends a fresh one instead of waiting a day.
      await updateSignup(db, outcome.orgId, outcome.signupId, { otpSpent: { at: now } }, now);
      throw error;
    }
  }
  return { organizationId: outcome.orgId, inboxId: outcome.inboxId, apiKey: outcome.key.secret };
}

/** A code as stored: its argon2 hash, valid for OTP_TTL_MS from now. */
async function otpRecord(code: string, now: Date) {
  return { hash: await argon2Hash(code), expiresAt: new Date(now.getTime() + OTP_TTL_MS) };
}

/** Checks the code; on success the organization is verified and its ceiling and allow-list lifted. */
export async function agentVerify(
  services: Services,
  principal: ApiKeyPrincipal,
  otpCode: string,
): Promise<void> {
  const { db } = services;
  const code = otpCode.trim();
  const now = services.clock.now();
  const signup = await signupOfOrganization(db, principal.orgId);
  if (!signup || principal.organizationStatus !== "AGENT_UNVERIFIED") {
    throw badUserInput("This organization has no pending agent verification.", "otpCode");
  }
  const tooMany = () =>
    badUserInput(
      "Too many attempts: call agentSignUp again for a new code once this one expires.",
      "otpCode",
    );
  if (signup.otp_attempts >= MAX_OTP_ATTEMPTS) throw tooMany();
  if (!signup.otp_hash || !signup.otp_expires_at || signup.otp_expires_at.getTime() <= now.getTime()) {
    throw badUserInput("The code has expired: call agentSignUp again for a new one.", "otpCode");
  }
  const attempts = await countAttempt(db, signup.org_id, signup.id, MAX_OTP_ATTEMPTS, now);
  if (attempts === undefined) throw tooMany();
  const valid = /^\d{6}$/.test(code) && (await argon2Verify(signup.otp_hash, code).catch(() => false));
  if (!valid) {
    throw badUserInput(`Wrong code (${MAX_OTP_ATTEMPTS - attempts} attempts left).`, "otpCode");
  }
  await updateSignup(db, signup.org_id, signup.id, { verifiedAt: now }, now);
  await setOrganizationStatus(services, signup.org_id, "AGENT_VERIFIED");
}
