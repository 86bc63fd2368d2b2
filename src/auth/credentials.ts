// Credentials on the wire (the Bearer header, the session cookie, the graphql-ws connection_init
// payload), resolved once per request into a Principal; and the rule that anonymous callers reach
// only public fields (docs/permissions.md, "Callers").

import type { IncomingMessage } from "node:http";
import {
  type DocumentNode,
  type FragmentDefinitionNode,
  Kind,
  type OperationDefinitionNode,
  type SelectionSetNode,
} from "graphql";
import type { Authenticator } from "./authenticator.ts";
import { ANONYMOUS, type Principal } from "./principal.ts";

export const SESSION_COOKIE = "mailroom_session";

/** Root fields anyone may call. Introspection (`__schema`, `__type`, `__typename`) is public too. */
export const PUBLIC_ROOT_FIELDS: ReadonlySet<string> = new Set(["login", "agentSignUp"]);

export class InvalidCredential extends Error {
  override name = "InvalidCredential";
}

export function readCookie(header: string | null | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(";")) {
    const index = part.indexOf("=");
    if (index === -1) continue;
    if (part.slice(0, index).trim() === name) {
      try {
        return decodeURIComponent(part.slice(index + 1).trim());
      } catch {
        return part.slice(index + 1).trim();
      }
    }
  }
  return undefined;
}

export interface Credentials {
  authorization?: string | null | undefined;
  sessionToken?: string | undefined;
}

/**
 * Resolves the caller. No credential: anonymous. A credential that is present but malformed,
 * unknown, deleted or expired: InvalidCredential, whatever the cause, so failures are not an oracle.
 * A Bearer header wins over a cookie.
 */
export async function resolvePrincipal(
  authenticator: Authenticator,
  credentials: Credentials,
): Promise<Principal> {
  const { authorization, sessionToken } = credentials;
  if (authorization !== undefined && authorization !== null) {
    const match = /^Bearer +(\S+) *$/i.exec(authorization);
    const principal = match?.[1] ? await authenticator.authenticateApiKey(match[1]) : null;
    if (!principal) throw new InvalidCredential();
    return principal;
  }
  if (sessionToken !== undefined) {
    const principal = await authenticator.authenticateSession(sessionToken);
    if (!principal) throw new InvalidCredential();
    return principal;
  }
  return ANONYMOUS;
}

const authentications = new WeakMap<object, Promise<Principal>>();

/**
 * The request's principal, resolved once whether the rate limiter or the GraphQL context asks first
 * (an unknown key costs one database read, not two). Rejects with InvalidCredential like
 * resolvePrincipal.
 */
export function authenticateOnce(
  authenticator: Authenticator,
  req: IncomingMessage | undefined,
  request: Request,
): Promise<Principal> {
  const resolve = () =>
    resolvePrincipal(authenticator, {
      authorization: request.headers.get("authorization"),
      sessionToken: readCookie(request.headers.get("cookie"), SESSION_COOKIE),
    });
  if (!req) return resolve();
  let principal = authentications.get(req);
  if (!principal) {
    principal = resolve();
    authentications.set(req, principal);
  }
  return principal;
}

function rootFieldNames(document: DocumentNode, operationName: string | null | undefined): string[] {
  const operations = document.definitions.filter(
    (d): d is OperationDefinitionNode => d.kind === Kind.OPERATION_DEFINITION,
  );
  const operation = operationName ? operations.find((o) => o.name?.value === operationName) : operations[0];
  if (!operation) return [];
  const fragments = new Map(
    document.definitions
      .filter((d): d is FragmentDefinitionNode => d.kind === Kind.FRAGMENT_DEFINITION)
      .map((d) => [d.name.value, d]),
  );
  const names: string[] = [];
  const seen = new Set<string>();
  const visit = (selectionSet: SelectionSetNode) => {
    for (const selection of selectionSet.selections) {
      if (selection.kind === Kind.FIELD) names.push(selection.name.value);
      else if (selection.kind === Kind.INLINE_FRAGMENT) visit(selection.selectionSet);
      else if (!seen.has(selection.name.value)) {
        seen.add(selection.name.value);
        const fragment = fragments.get(selection.name.value);
        if (fragment) visit(fragment.selectionSet);
      }
    }
  };
  visit(operation.selectionSet);
  if (operation.operation === "subscription") names.push("(subscription)");
  return names;
}

export function touchesOnlyPublicFields(document: DocumentNode, operationName?: string | null): boolean {
  return rootFieldNames(document, operationName).every(
    (name) => name.startsWith("__") || PUBLIC_ROOT_FIELDS.has(name),
  );
}
