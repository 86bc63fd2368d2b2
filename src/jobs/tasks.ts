// Every kind of background job the worker runs, by name.
import type { Services } from "../context.ts";
import { DELIVER_MESSAGE, deliverMessageTask } from "../mail/delivery.ts";
import { DELIVER_WEBHOOK, deliverWebhookTask } from "../webhooks/delivery.ts";
import type { JobTask } from "./worker.ts";

export function jobTasks(services: Services): Record<string, JobTask> {
  return {
    [DELIVER_MESSAGE]: deliverMessageTask(services),
    [DELIVER_WEBHOOK]: deliverWebhookTask(services),
  };
}
