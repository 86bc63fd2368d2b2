import { encodeGlobalID } from "@pothos/plugin-relay";
import { SESSION_COOKIE } from "../auth/credentials.ts";
import { foreignOriginError } from "../auth/origin.ts";
import type { SessionPrincipal } from "../auth/principal.ts";
import { enforceSensitiveLimit } from "../auth/rate-limit.ts";
import { clearedCookie, login, logout, sessionCookie, type User } from "../users/service.ts";
import { builder } from "./builder.ts";

export const RoleEnum = builder.enumType("Role", { values: { ADMIN: {}, MEMBER: {} } as const });

export const UserRef = builder.objectRef<User>("User").implement({
  description: "A person who signs in with email and password.",
  fields: (t) => ({
    // A global id like every other, though people are not nodes: they are reached through `viewer` only.
    id: t.id({ resolve: (user) => encodeGlobalID("User", user.id) }),
    email: t.exposeString("email"),
    role: t.field({ type: RoleEnum, resolve: (user) => user.role }),
    createdAt: t.field({ type: "DateTime", resolve: (user) => user.created_at }),
  }),
});

const LoginInput = builder.inputType("LoginInput", {
  fields: (t) => ({ email: t.string({ required: true }), password: t.string({ required: true }) }),
});

const LoginPayload = builder.simpleObject("LoginPayload", {
  fields: (t) => ({ user: t.field({ type: UserRef }) }),
});

builder.mutationField("login", (t) =>
  t.field({
    type: LoginPayload,
    nullable: true,
    description: "Public. Signs in and sets an HttpOnly, SameSite=Lax session cookie.",
    args: { input: t.arg({ type: LoginInput, required: true }) },
    resolve: async (_root, { input }, context) => {
      // A page of another origin must not sign the browser in (login CSRF): the cookie it would get is
      // the one our own pages trust.
      if (context.foreignOrigin) throw foreignOriginError();
      // Before the password hash is computed: per IP and per email, much stricter than the default.
      await enforceSensitiveLimit(context, "login", input.email);
      const session = await login(context.services, input.email, input.password);
      context.setCookie?.(
        sessionCookie(SESSION_COOKIE, session.token, session.expiresAt, context.secure ?? false),
      );
      return { user: session.user };
    },
  }),
);

builder.mutationField("logout", (t) =>
  t.boolean({
    description: "Ends the current session and clears its cookie. False when the caller is not a session.",
    authScopes: { authenticated: true },
    resolve: async (_root, _args, context) => {
      if (context.principal.kind !== "session") return false;
      await logout(context.services, context.principal as SessionPrincipal);
      context.setCookie?.(clearedCookie(SESSION_COOKIE, context.secure ?? false));
      return true;
    },
  }),
);
