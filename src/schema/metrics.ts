import { eventVisibilityOf } from "../events/visibility.ts";
import { metrics } from "../metrics/service.ts";
import { builder, requires } from "./builder.ts";
import { EVENT_TYPES, EventTypeEnum } from "./event-type.ts";
import { optionalId } from "./global-id.ts";

const MetricBucketEnum = builder.enumType("MetricBucket", {
  description: "The width of a metrics time bucket; buckets start at whole minutes, hours and days in UTC.",
  values: ["MINUTE", "HOUR", "DAY"] as const,
});

const MetricCountRef = builder.simpleObject("MetricCount", {
  description: "How many events of one type happened in one time bucket.",
  fields: (t) => ({
    type: t.field({ type: EventTypeEnum }),
    bucket: t.field({ type: "DateTime", description: "The start of the bucket." }),
    count: t.int(),
  }),
});

builder.queryField("metrics", (t) =>
  t.field({
    type: [MetricCountRef],
    ...requires("METRICS_READ"),
    description:
      "Event counts per type and time bucket in [from, to), oldest bucket first; empty buckets are left out. " +
      "The range spans at most 400 days. Only events the caller may read count: message events need MESSAGE_READ " +
      "and no label hidden from the caller on the message when it happened; DOMAIN_VERIFIED needs DOMAIN_READ.",
    args: {
      from: t.arg({ type: "DateTime", required: true, description: "Inclusive." }),
      to: t.arg({ type: "DateTime", required: true, description: "Exclusive; after from." }),
      types: t.arg({ type: [EventTypeEnum], description: "Only these types; all when omitted." }),
      podId: t.arg.id({ description: "Only events of this pod." }),
      inboxId: t.arg.id({ description: "Only events of this inbox." }),
      bucket: t.arg({
        type: MetricBucketEnum,
        description:
          "Defaults to MINUTE for a range up to 2 hours, HOUR up to 7 days, DAY beyond. At most 10080 buckets.",
      }),
    },
    resolve: (_root, args, context) =>
      metrics(context.services, eventVisibilityOf(context.principal), {
        from: args.from,
        to: args.to,
        types: args.types,
        podId: optionalId(args.podId, "Pod"),
        inboxId: optionalId(args.inboxId, "Inbox"),
        bucket: args.bucket,
        allTypes: EVENT_TYPES,
      }),
  }),
);
