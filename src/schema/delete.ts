// The shared delete input/payload, and global-id decoding that treats a bad id like a missing row.
import { decodeGlobalID } from "@pothos/plugin-relay";
import { notFound } from "../errors.ts";
import { builder } from "./builder.ts";

export const DeleteInputRef = builder.inputType("DeleteInput", {
  fields: (t) => ({ id: t.id({ required: true }) }),
});

export const DeletePayloadRef = builder.simpleObject("DeletePayload", {
  fields: (t) => ({ deletedId: t.id() }),
});

/** decodeId for an optional argument: absent stays undefined. */
export function optionalId(
  globalId: string | number | null | undefined,
  typename: string,
): string | undefined {
  return globalId == null ? undefined : decodeId(String(globalId), typename);
}

/** The row id inside a global id of `typename`; anything else is NOT_FOUND, exactly like a missing row. */
export function decodeId(globalId: string, typename: string): string {
  try {
    const { typename: actual, id } = decodeGlobalID(globalId);
    if (actual === typename && /^\d{1,19}$/.test(id)) return id;
  } catch {
    // fall through
  }
  throw notFound(typename);
}
