// Every kind of background job, by name, and the runner it runs in. Mail between hosted inboxes,
// mail handed to the relay and webhook deliveries each have slots of their own: a relay that never
// answers or an endpoint that drips can hold up only its own kind of job (docs/mail.md, "Outbound").
import type { InboundServices } from "../inbound/ingest.ts";
import type { JobRunner } from "../jobs/worker.ts";
import {
  DELIVER_MESSAGE,
  deliverMessageTask,
  RELAY_MESSAGE,
  relayMessageTask,
} from "../outbound/delivery.ts";
import {
  PURGE_IDEMPOTENCY_KEYS,
  PURGE_IDEMPOTENCY_KEYS_CRONTAB,
  purgeIdempotencyKeys,
} from "../outbound/idempotency.ts";
import { SEND_SCHEDULED_DRAFT, sendScheduledDraftTask } from "../outbound/scheduled.ts";
import { DELIVER_WEBHOOK, deliverWebhookTask } from "../webhooks/delivery.ts";

export function jobRunners(services: InboundServices): JobRunner[] {
  const { config } = services;
  return [
    {
      name: "hosted-delivery",
      concurrency: config.hostedDeliveryConcurrency,
      tasks: { [DELIVER_MESSAGE]: deliverMessageTask(services) },
    },
    {
      name: "relay",
      concurrency: config.relayConcurrency,
      tasks: { [RELAY_MESSAGE]: relayMessageTask(services) },
    },
    {
      name: "webhooks",
      concurrency: config.webhookConcurrency,
      tasks: { [DELIVER_WEBHOOK]: deliverWebhookTask(services) },
    },
    {
      // Sends that were scheduled: composing and storing like a send from the API.
      name: "scheduled-sends",
      concurrency: 2,
      tasks: { [SEND_SCHEDULED_DRAFT]: sendScheduledDraftTask(services) },
    },
    {
      // Housekeeping on a schedule: one slot is plenty.
      name: "maintenance",
      concurrency: 1,
      tasks: { [PURGE_IDEMPOTENCY_KEYS]: { run: () => purgeIdempotencyKeys(services) } },
      crontab: PURGE_IDEMPOTENCY_KEYS_CRONTAB,
    },
  ];
}
