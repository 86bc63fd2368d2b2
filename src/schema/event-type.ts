// The EventType enum: what webhooks subscribe to, what metrics count and what the event stream carries.
import { builder } from "./builder.ts";

/** Every event type, in the order the API documents them; the `events.type` column accepts exactly these. */
export const EVENT_TYPES = [
  "MESSAGE_RECEIVED",
  "MESSAGE_SENT",
  "MESSAGE_DELIVERED",
  "MESSAGE_BOUNCED",
  "MESSAGE_REJECTED",
  "DOMAIN_VERIFIED",
  "DRAFT_PENDING_APPROVAL",
] as const;

export type EventType = (typeof EVENT_TYPES)[number];

export const EventTypeEnum = builder.enumType("EventType", {
  description:
    "Something that happened to mail or a domain; webhooks subscribe to these and metrics count them.",
  values: EVENT_TYPES,
});
