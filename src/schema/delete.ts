// The shared delete input and payload.
import { builder } from "./builder.ts";

export const DeleteInputRef = builder.inputType("DeleteInput", {
  fields: (t) => ({ id: t.id({ required: true }) }),
});

export const DeletePayloadRef = builder.simpleObject("DeletePayload", {
  fields: (t) => ({ deletedId: t.id() }),
});
