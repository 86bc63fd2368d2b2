// Agent sign-up (PERMISSIONS.md): an agent creates an unverified organization, an inbox and a key;
// a human proves the agent may act by reading a code mailed to them and handing it back.
import { randomInt } from "node:crypto";
import { hash as argon2Hash, verify as argon2Verify } from "@node-rs/argon2";
import { GraphQLError } from "graphql";
import { sql } from "kysely";
import MailComposer from "nodemailer/lib/mail-composer/index.js";
import { mintOrganizationKey } from "../api-keys/service.ts";
import { notifyAuthChange } from "../auth/authenticator.ts";
import type { ApiKeyPrincipal } from "../auth/principal.ts";
import { uniqueViolation } from "../db/errors.ts";
import { verifiedOwnerOf } from "../domains/repository.ts";
import { badUserInput, conflict } from "../errors.ts";
import { assertNotReserved, validateUsername } from "../inboxes/service.ts";
import { domainOf, systemSender } from "../mail/addresses.ts";
import { setOrganizationStatus } from "../organizations/service.ts";
import { type RelayOutcome, relayAttempt, relayDeadlines } from "../outbound/relay.ts";
import type { Services } from "../services.ts";
import { normaliseEmail } from "../users/service.ts";

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
  if (!config.smtpRelayUrl) throw noRelay();
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
  badUserInput("No SMTP relay is configured to mail the code to humanEmail (SMTP_RELAY_URL).", "humanEmail");

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
  if (!config.smtpRelayUrl) throw noRelay();
  const now = services.clock.now();

  const outcome = await db.transaction().execute(async (trx) => {
    const existing = await trx
      .selectFrom("agent_signup_emails as e")
      .innerJoin("agent_signups as s", (join) =>
        join.onRef("s.org_id", "=", "e.org_id").onRef("s.id", "=", "e.agent_signup_id"),
      )
      .innerJoin("organizations as o", "o.id", "s.org_id")
      .select(["s.org_id", "s.id", "s.inbox_id", "s.api_key_id", "s.otp_expires_at", "o.status"])
      .where("e.human_email", "=", humanEmail)
      .forUpdate()
      .executeTakeFirst();

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
        await trx
          .deleteFrom("api_keys")
          .where("org_id", "=", existing.org_id)
          .where("id", "=", existing.api_key_id)
          .execute();
        await notifyAuthChange(trx, { kind: "apiKey", orgId: existing.org_id, id: existing.api_key_id });
      }
      const key = await mintOrganizationKey(trx, existing.org_id, {
        name: "agent",
        pepper: config.tokenPepper,
      });
      const expired = existing.otp_expires_at === null || existing.otp_expires_at.getTime() <= now.getTime();
      const code = expired ? newOtp() : undefined;
      await trx
        .updateTable("agent_signups")
        .set({
          api_key_id: key.id,
          ...(code
            ? {
                otp_hash: await argon2Hash(code),
                otp_expires_at: new Date(now.getTime() + OTP_TTL_MS),
                otp_attempts: 0,
              }
            : {}),
          updated_at: now,
        })
        .where("org_id", "=", existing.org_id)
        .where("id", "=", existing.id)
        .execute();
      return {
        orgId: existing.org_id,
        inboxId: existing.inbox_id as string,
        key,
        code,
        revoked: existing.api_key_id,
        signupId: existing.id,
      };
    }

    const org = await trx
      .insertInto("organizations")
      .values({ name: username, status: "AGENT_UNVERIFIED" })
      .returning("id")
      .executeTakeFirstOrThrow();
    const pod = await trx
      .insertInto("pods")
      .values({ org_id: org.id, name: "default" })
      .returning("id")
      .executeTakeFirstOrThrow();
    const email = `${username}@${config.mailDomain}`;
    let inboxId: string;
    try {
      const inbox = await trx
        .insertInto("inboxes")
        .values({ org_id: org.id, pod_id: pod.id, username, domain: config.mailDomain, email })
        .returning("id")
        .executeTakeFirstOrThrow();
      await trx.insertInto("inbox_addresses").values({ email, org_id: org.id, inbox_id: inbox.id }).execute();
      inboxId = inbox.id;
    } catch (error) {
      if (uniqueViolation(error) !== undefined) throw conflict(`${email} is taken.`, "username");
      throw error;
    }
    const key = await mintOrganizationKey(trx, org.id, { name: "agent", pepper: config.tokenPepper });
    const code = newOtp();
    const signup = await trx
      .insertInto("agent_signups")
      .values({
        org_id: org.id,
        human_email: humanEmail,
        username,
        inbox_id: inboxId,
        api_key_id: key.id,
        otp_hash: await argon2Hash(code),
        otp_expires_at: new Date(now.getTime() + OTP_TTL_MS),
      })
      .returning("id")
      .executeTakeFirstOrThrow();
    await trx
      .insertInto("agent_signup_emails")
      .values({ human_email: humanEmail, org_id: org.id, agent_signup_id: signup.id })
      .execute();
    return { orgId: org.id, inboxId, key, code, revoked: null, signupId: signup.id };
  });

  if (outcome.revoked !== null)
    services.authenticator.invalidate({ kind: "apiKey", orgId: outcome.orgId, id: outcome.revoked });
  if (outcome.code) {
    try {
      await mailCode(services, humanEmail, outcome.code);
    } catch (error) {
      // Not mailed: expire it, so the next sign-up call sends a fresh one instead of waiting a day.
      await db
        .updateTable("agent_signups")
        .set({ otp_expires_at: now })
        .where("org_id", "=", outcome.orgId)
        .where("id", "=", outcome.signupId)
        .execute();
      throw error;
    }
  }
  return { organizationId: outcome.orgId, inboxId: outcome.inboxId, apiKey: outcome.key.secret };
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
  const signup = await db
    .selectFrom("agent_signups")
    .selectAll()
    .where("org_id", "=", principal.orgId)
    .executeTakeFirst();
  if (!signup || principal.organizationStatus !== "AGENT_UNVERIFIED") {
    throw badUserInput("This organization has no pending agent verification.", "otpCode");
  }
  if (signup.otp_attempts >= MAX_OTP_ATTEMPTS) {
    throw badUserInput(
      "Too many attempts: call agentSignUp again for a new code once this one expires.",
      "otpCode",
    );
  }
  if (!signup.otp_hash || !signup.otp_expires_at || signup.otp_expires_at.getTime() <= now.getTime()) {
    throw badUserInput("The code has expired: call agentSignUp again for a new one.", "otpCode");
  }
  // Count the attempt before checking it, so parallel guesses cannot exceed the limit.
  const counted = await db
    .updateTable("agent_signups")
    .set({ otp_attempts: sql`otp_attempts + 1`, updated_at: now })
    .where("org_id", "=", signup.org_id)
    .where("id", "=", signup.id)
    .where("otp_attempts", "<", MAX_OTP_ATTEMPTS)
    .returning("otp_attempts")
    .executeTakeFirst();
  if (!counted)
    throw badUserInput(
      "Too many attempts: call agentSignUp again for a new code once this one expires.",
      "otpCode",
    );
  const valid = /^\d{6}$/.test(code) && (await argon2Verify(signup.otp_hash, code).catch(() => false));
  if (!valid) {
    throw badUserInput(`Wrong code (${MAX_OTP_ATTEMPTS - counted.otp_attempts} attempts left).`, "otpCode");
  }
  await db
    .updateTable("agent_signups")
    .set({ verified_at: now, otp_hash: null, otp_expires_at: null, updated_at: now })
    .where("org_id", "=", signup.org_id)
    .where("id", "=", signup.id)
    .execute();
  await setOrganizationStatus(db, signup.org_id, "AGENT_VERIFIED");
  services.authenticator.invalidate({ kind: "organization", orgId: signup.org_id });
}
