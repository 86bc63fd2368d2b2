// Imports every type file and exports the finished schema; nothing else.
import { assertValidSchema } from "graphql";
import { builder, describeRequirements } from "./builder.ts";
import { describeSchema } from "./descriptions.ts";
import { withRequiresDirective } from "./permission.ts";
import "./organization.ts";
import "./pod.ts";
import "./inbox.ts";
import "./message.ts";
import "./thread.ts";
import "./user.ts";
import "./api-key.ts";
import "./viewer.ts";
import "./agent.ts";
import "./event.ts";
import "./webhook-delivery.ts";
import "./event-type.ts";
import "./webhook.ts";
import "./domain.ts";
import "./list-entry.ts";
import "./inbox-mutations.ts";
import "./draft.ts";
import "./send.ts";
import "./metrics.ts";
import "./search.ts";
import "./check-access.ts";
import "./node.ts";

export const schema = withRequiresDirective(
  describeRequirements(describeSchema(builder.toSchema({ sortSchema: false }))),
);

// Fail at start-up, not on the first request.
assertValidSchema(schema);

/** The same schema without permission checks: only for BENCH_DISABLE_AUTHORIZATION (src/config.ts). */
export function schemaWithoutAuthorization() {
  return withRequiresDirective(
    describeRequirements(describeSchema(builder.toSchema({ sortSchema: false, disableScopeAuth: true }))),
  );
}
