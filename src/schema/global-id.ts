// Global ids from clients: the one place where an id from outside becomes a row id. An id that this
// API could not have issued (malformed, another type, a number no bigint can hold) is reported
// exactly like a missing row, so it never reaches SQL and never tells a prober anything.
import { decodeGlobalID, encodeGlobalID } from "@pothos/plugin-relay";
import { type GraphQLSchema, isObjectType } from "graphql";
import { isRowId } from "../db/ids.ts";
import { badUserInput, notFound } from "../errors.ts";

/**
 * The id an Attachment node resolves to when it is a draft's attachment: such ids are issued as
 * `DraftAttachment:<id>` (issuedGlobalId), so they never name a message's attachment and are not
 * loaded by node(id:) — a draft's attachments are read through their draft (docs/schema.md).
 */
export const DRAFT_ATTACHMENT_ID_MARK = "draft:";

/** The global id the API issues for an object of `typename` (the relay plugin's encodeGlobalID). */
export function issuedGlobalId(typename: string, id: string | number | bigint): string {
  const raw = String(id);
  if (typename === "Attachment" && raw.startsWith(DRAFT_ATTACHMENT_ID_MARK)) {
    return encodeGlobalID("DraftAttachment", raw.slice(DRAFT_ATTACHMENT_ID_MARK.length));
  }
  return encodeGlobalID(typename, raw);
}

/** The type name and row id inside a global id, or undefined when it is not one we could have issued. */
export function parseGlobalId(globalId: string): { typename: string; id: string } | undefined {
  try {
    const { typename, id } = decodeGlobalID(globalId);
    if (isRowId(id)) return { typename, id };
  } catch {
    // not base64, or no "Type:" prefix: not ours
  }
  return undefined;
}

/** The row id inside a global id of `typename`; anything else is NOT_FOUND, exactly like a missing row. */
export function decodeId(globalId: string | number, typename: string): string {
  const parsed = parseGlobalId(String(globalId));
  if (parsed?.typename === typename) return parsed.id;
  throw notFound(typename);
}

/** decodeId for an optional argument: absent stays undefined. */
export function optionalId(
  globalId: string | number | null | undefined,
  typename: string,
): string | undefined {
  return globalId == null ? undefined : decodeId(globalId, typename);
}

/** Whether objects of `typename` load by global id: the type implements Node. */
export function isNodeType(schema: GraphQLSchema, typename: string): boolean {
  const type = schema.getType(typename);
  return isObjectType(type) && type.getInterfaces().some((i) => i.name === "Node");
}

/**
 * The error of node(id:) for an id that loads nothing by its type: BAD_USER_INPUT naming `id` for a
 * type of ours that is not a node (User), NOT_FOUND for a type name we never issue.
 */
export function unloadableIdError(schema: GraphQLSchema, typename: string) {
  return schema.getType(typename)
    ? badUserInput(
        `${typename} ids cannot be loaded with node(id:); only types that implement Node can.`,
        "id",
      )
    : notFound();
}
