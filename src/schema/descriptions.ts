// Descriptions of schema elements whose definitions do not carry one inline, keyed by their
// coordinate: `Type`, `Type.field`, `Type.field(argument)`, `Input.field`, `Enum.VALUE`. describeSchema
// fills them in before describeRequirements adds "Requires X."; an entry naming no element of the
// schema stops start-up, so a renamed field cannot leave its description behind (docs/schema.md).
import {
  type GraphQLSchema,
  isEnumType,
  isInputObjectType,
  isInterfaceType,
  isObjectType,
  Kind,
} from "graphql";

const DESCRIPTIONS: Readonly<Record<string, string>> = {
  "AccessDenial.requiredPermission": "The permission the caller would need for this field.",
  AccessReport:
    "What `checkAccess` found: whether the document would run in full for the caller, and what it would be denied.",
  "AccessReport.denials": "Every selected field the caller may not read, with its path; empty when allowed.",
  AgentSignUpInput: "The input of `agentSignUp`: who the agent is and the person who vouches for it.",
  AgentSignUpPayload: "What `agentSignUp` returns: the new organization, its first inbox and its API key.",
  "AgentSignUpPayload.inboxId": "Global id of the agent's first inbox.",
  "AgentSignUpPayload.organizationId": "Global id of the new (unverified) organization.",
  AgentVerifyInput: "The input of `agentVerify`.",
  "AgentVerifyInput.otpCode": "The one-time code mailed to the human email given at sign-up.",
  AgentVerifyPayload: "What `agentVerify` returns.",
  "AgentVerifyPayload.verified": "True when the code was right and the organization is now verified.",
  "ApiKey.createdAt": "When the key was created.",
  "ApiKey.expiresAt": "When the key stops working; null when it never expires.",
  "ApiKey.inbox": "The inbox an INBOX-scoped key is bound to; null for other scopes.",
  "ApiKey.lastUsedAt":
    "When the key last authenticated a request (updated at most once a minute); null when never used.",
  "ApiKey.name": "A label for people; not unique.",
  "ApiKey.pod": "The pod a POD- or INBOX-scoped key is bound to; null for ORGANIZATION scope.",
  "ApiKey.scope": "How far the key reaches: the organization, one pod or one inbox.",
  ApproveDraftInput: "The input of `approveDraft`.",
  "ApproveDraftInput.id": "Global id of a draft in PENDING_APPROVAL.",
  Attachment:
    "A file attached to a message or draft. Loadable with `node(id:)` when the caller may read its message.",
  "Attachment.contentId":
    "The MIME Content-ID (without angle brackets) an inline attachment is referenced by from HTML; null otherwise.",
  "Attachment.contentType": "The MIME type, e.g. `application/pdf`.",
  "Attachment.disposition": "`attachment` or `inline`, from the Content-Disposition header.",
  "Attachment.filename": "The file name as sent; null when the part had none.",
  "Attachment.id": "Global id of the attachment.",
  "Attachment.size": "Size of the decoded content in bytes.",
  AttachmentInput: "A file to attach when sending, replying or drafting.",
  "AttachmentInput.filename": "The file name recipients see.",
  "AuthCheck.result": "The verdict of this check.",
  CreateApiKeyInput: "The input of `createApiKey`. The new key never gets more than its creator has.",
  "CreateApiKeyInput.expiresAt": "When the key stops working; omitted: never.",
  "CreateApiKeyInput.name": "A label for people.",
  "CreateApiKeyInput.permissions":
    "A whitelist of flags; omitted: everything the scope and the creator allow.",
  CreateApiKeyPayload: "The key and its secret, which is shown only here, once.",
  "CreateApiKeyPayload.apiKey": "The new key.",
  CreateDomainInput: "The input of `createDomain`.",
  CreateDraftInput: "The input of `createDraft`.",
  "CreateDraftInput.html": "HTML body.",
  "CreateDraftInput.inboxId": "Global id of the inbox the draft will be sent from.",
  "CreateDraftInput.text": "Plain-text body.",
  CreateInboxInput: "The input of `createInbox`.",
  "CreateInboxInput.clientId":
    "Your own idempotency id: a second create with the same clientId in the pod returns the same inbox.",
  "CreateInboxInput.displayName": "The name shown beside the address in the From header.",
  CreateInboxPayload: "What `createInbox` returns.",
  "CreateInboxPayload.inbox": "The new inbox.",
  CreateListEntryInput: "The input of `createListEntry`.",
  "CreateListEntryInput.direction": "Whether the entry applies to mail received or sent.",
  "CreateListEntryInput.type": "ALLOW or BLOCK.",
  CreateListEntryPayload: "What `createListEntry` returns.",
  "CreateListEntryPayload.listEntry": "The new entry.",
  CreatePodInput: "The input of `createPod`.",
  "CreatePodInput.clientId":
    "Your own idempotency id: a second create with the same clientId returns the same pod.",
  "CreatePodInput.name": "A name for people.",
  CreatePodPayload: "What `createPod` returns.",
  "CreatePodPayload.pod": "The new pod.",
  CreateWebhookInput: "The input of `createWebhook`.",
  "CreateWebhookInput.eventTypes": "The events to deliver (at least one).",
  CreateWebhookPayload: "What `createWebhook` returns; its signing secret is shown only here, once.",
  "CreateWebhookPayload.webhook": "The new webhook.",
  DeleteInput: "The input of every `delete…` mutation that takes one id.",
  "DeleteInput.id": "Global id of the object to delete.",
  DeletePayload: "What a delete returns.",
  "DeletePayload.deletedId": "The global id that was deleted.",
  DeleteThreadInput: "The input of `deleteThread`.",
  "DeleteThreadInput.id": "Global id of the thread to delete with all its messages.",
  "DnsRecord.purpose": "What the record is for.",
  "DnsRecord.status": "Whether the last check found the record as expected.",
  "DnsRecord.type": "The DNS record type to create.",
  "DnsRecord.verified": "True when the last check found the record as expected.",
  DnsRecordPurpose: "What a DNS record of a domain is for.",
  "DnsRecordPurpose.DKIM": "The public key that verifies our DKIM signatures.",
  "DnsRecordPurpose.DMARC": "The domain's DMARC policy.",
  "DnsRecordPurpose.MX": "Routes the domain's incoming mail to this server.",
  "DnsRecordPurpose.SPF": "Authorizes this server to send for the domain.",
  DnsRecordStatus: "The result of the last DNS check of one record.",
  DnsRecordType: "A DNS record type.",
  "DnsRecordType.MX": "A mail exchanger record.",
  "DnsRecordType.TXT": "A text record.",
  "Domain.createdAt": "When the domain was added.",
  "Domain.domain": "The domain name, lower case, e.g. `example.com`.",
  "Domain.lastCheckedAt": "When its DNS records were last checked; null before the first check.",
  "Domain.records": "The DNS records to create, with the state of each at the last check.",
  "Domain.status": "Whether the domain is verified and can send and receive.",
  DomainPayload: "What `createDomain` and `verifyDomain` return.",
  "DomainPayload.domain": "The domain, with its records as now checked.",
  DomainStatus: "The verification state of a custom domain.",
  "Draft.bcc": "Bcc recipient addresses.",
  "Draft.cc": "Cc recipient addresses.",
  "Draft.createdAt": "When the draft was created.",
  "Draft.inbox": "The inbox it will be sent from.",
  "Draft.sendStatus":
    "Where the draft is on its way out: a draft, scheduled, sending, sent, failed or waiting for approval.",
  "Draft.subject": "Subject line; null when not set yet.",
  "Draft.to": "Recipient addresses.",
  "Draft.updatedAt": "When the draft last changed.",
  DraftPayload: "What `createDraft` and `updateDraft` return.",
  "DraftPayload.draft": "The draft as stored.",
  "EventType.DOMAIN_VERIFIED": "A custom domain passed its DNS checks. About a domain: needs DOMAIN_READ.",
  "EventType.DRAFT_PENDING_APPROVAL":
    "An approval-bound key tried to send; the draft waits for `approveDraft`. Needs DRAFT_READ.",
  "EventType.MESSAGE_BOUNCED": "An outbound message failed permanently for a recipient. Needs MESSAGE_READ.",
  "EventType.MESSAGE_DELIVERED":
    "An outbound message was accepted by the recipient's server. Needs MESSAGE_READ.",
  "EventType.MESSAGE_RECEIVED":
    "A message arrived in an inbox. Needs MESSAGE_READ and the labels it carries.",
  "EventType.MESSAGE_REJECTED": "A message was refused and nothing was stored. Needs MESSAGE_READ.",
  "EventType.MESSAGE_SENT":
    "A message left an inbox (sent, replied, forwarded or a scheduled draft). Needs MESSAGE_READ.",
  ForwardMessageInput: "The input of `forwardMessage`.",
  "ForwardMessageInput.html": "HTML note placed above the forwarded message.",
  "ForwardMessageInput.messageId": "Global id of the message to forward.",
  Inbox: "An email address hosted here, in one pod. Its mail is read through `threads` and `messages`.",
  "Inbox.createdAt": "When the inbox was created.",
  "Inbox.displayName": "The name shown beside the address in the From header; null for none.",
  "Inbox.email": "The full address, lower case.",
  "Inbox.messages(filter)": "Only messages matching every given condition.",
  "Inbox.messages(order)": "NEWEST_FIRST (default) or OLDEST_FIRST by arrival.",
  "Inbox.pod": "The pod the inbox belongs to.",
  "Inbox.threads(filter)": "Only threads with at least one visible message matching every given condition.",
  "Inbox.threads(order)": "NEWEST_FIRST (default) or OLDEST_FIRST by last message.",
  KeyScope: "How far a credential reaches.",
  "KeyScope.INBOX": "One inbox and what is in it.",
  "KeyScope.ORGANIZATION": "The whole organization: every pod and inbox.",
  "KeyScope.POD": "One pod: its inboxes, domains, webhooks and keys.",
  ListDirection: "Which mail a list entry applies to.",
  "ListEntry.createdAt": "When the entry was added.",
  "ListEntry.direction": "Mail received or sent.",
  "ListEntry.inbox": "The inbox it applies to; null when it applies more widely.",
  "ListEntry.pod": "The pod it applies to; null for organization-wide entries.",
  "ListEntry.type": "ALLOW or BLOCK.",
  ListType: "Whether a list entry lets mail through or stops it.",
  "ListType.ALLOW":
    "Lets matching mail through; once any ALLOW entry applies, mail matching none of them is refused.",
  "ListType.BLOCK": "Mail matching the entry is refused (or, when sending, fails with RECIPIENT_BLOCKED).",
  LoginInput: "The input of `login`.",
  "LoginInput.email": "The person's email address.",
  "LoginInput.password": "The person's password; never logged.",
  LoginPayload: "What `login` returns.",
  "LoginPayload.user": "The person now signed in.",
  "Message.attachments": "Its attachments, in MIME order.",
  "Message.bcc": "Bcc addresses; empty for received mail, whose Bcc recipients are not in the message.",
  "Message.cc": "Cc addresses.",
  "Message.createdAt": "When it was received or sent.",
  "Message.from": "The sender's bare address; `fromAddress` has the name too.",
  "Message.inReplyTo": "The Message-ID it replies to, from In-Reply-To; null for none.",
  "Message.inbox": "The inbox it belongs to.",
  "Message.labels":
    "Its labels (system labels like `received`, `sent`, `spam` and your own), hidden ones left out.",
  "Message.preview": "The first characters of its text, for lists.",
  "Message.references": "The Message-IDs of its References header, oldest first.",
  "Message.replyTo": "Reply-To addresses.",
  "Message.subject": "Subject line; null for none.",
  "Message.thread": "The thread it belongs to.",
  "Message.to": "To addresses.",
  "MetricBucket.DAY": "One count per calendar day (UTC).",
  "MetricBucket.HOUR": "One count per hour.",
  "MetricBucket.MINUTE": "One count per minute.",
  "MetricCount.count": "How many events of the type happened in the bucket.",
  "MetricCount.type": "The event type counted.",
  Mutation: "Everything that changes state. Each guarded mutation's description names its permission.",
  Organization: "A tenant: everything (pods, inboxes, keys) belongs to exactly one organization.",
  "Organization.createdAt": "When it was created.",
  "Organization.name": "Its name.",
  "Organization.status":
    "ACTIVE for organizations of people; AGENT_UNVERIFIED/AGENT_VERIFIED for agents that signed up.",
  OrganizationStatus: "An organization's standing.",
  "OrganizationStatus.ACTIVE": "A normal organization, created by its administrator.",
  "OrganizationStatus.AGENT_UNVERIFIED":
    "An agent's organization before its human confirmed it: limited sending, only to the human.",
  "OrganizationStatus.AGENT_VERIFIED": "An agent's organization whose human confirmed it with `agentVerify`.",
  Pod: "A group of inboxes (for example one customer of yours) with its own domains, webhooks and keys.",
  "Pod.clientId": "Your own id for the pod, given at creation; null for none.",
  "Pod.createdAt": "When it was created.",
  "Pod.name": "Its name.",
  Query: "Everything readable. Each guarded field's description names its permission.",
  "Query.apiKeys(inboxId)": "Only keys bound to this inbox.",
  "Query.apiKeys(podId)": "Only keys bound to this pod (or an inbox in it).",
  "Query.checkAccess(query)": "The GraphQL document to check; it is validated, never run.",
  "Query.checkAccess(variables)": "Its variables, as for running it.",
  "Query.draft(id)": "Global id of the draft.",
  "Query.drafts(inboxId)": "Only drafts of this inbox.",
  "Query.drafts(sendStatus)": "Only drafts in this state.",
  "Query.inbox(email)": "The inbox's address (case-insensitive); give this or `id`.",
  "Query.inbox(id)": "Global id of the inbox; give this or `email`.",
  "Query.inboxes(podId)": "Only inboxes of this pod.",
  "Query.listEntries(direction)": "Only entries of this direction.",
  "Query.listEntries(type)": "Only ALLOW or only BLOCK entries.",
  "Query.message(id)": "Global id of the message.",
  "Query.messages(filter)": "Only messages matching every given condition.",
  "Query.messages(inboxId)": "Only messages of this inbox.",
  "Query.messages(labels)": "Only messages carrying all of these (visible) labels.",
  "Query.messages(order)": "NEWEST_FIRST (default) or OLDEST_FIRST by arrival.",
  "Query.messages(podId)": "Only messages of inboxes in this pod.",
  "Query.node(id)": "A global id, as any `id` field returns it.",
  "Query.pod(id)": "Global id of the pod.",
  "Query.searchMessages(after)": "Continue after this cursor (an edge's `cursor` or `pageInfo.endCursor`).",
  "Query.searchMessages(filter)": "Only messages also matching every given condition.",
  "Query.searchMessages(first)": "At most this many results: 0–200, default 50.",
  "Query.searchMessages(inboxId)": "Only messages of this inbox.",
  "Query.searchMessages(podId)": "Only messages of inboxes in this pod.",
  "Query.thread(id)": "Global id of the thread.",
  "Query.threads(filter)": "Only threads with at least one visible message matching every given condition.",
  "Query.threads(inboxId)": "Only threads of this inbox.",
  "Query.threads(labels)": "Only threads carrying all of these (visible) labels.",
  "Query.threads(order)": "NEWEST_FIRST (default) or OLDEST_FIRST by last message.",
  "Query.threads(podId)": "Only threads of inboxes in this pod.",
  "Query.viewer":
    "Who is calling: organization, scope, key or user, and effective permissions. Any authenticated caller.",
  ReplyToMessageInput: "The input of `replyToMessage`.",
  "ReplyToMessageInput.attachments": "Files to attach.",
  "ReplyToMessageInput.html": "HTML body of the reply.",
  "ReplyToMessageInput.messageId": "Global id of the message to reply to.",
  "ReplyToMessageInput.text": "Plain-text body of the reply.",
  Role: "What a person may do in their organization.",
  "Role.ADMIN": "An administrator of the organization.",
  "Role.MEMBER": "A person of the organization who is not an administrator.",
  RollApiKeyInput: "The input of `rollApiKey`.",
  "RollApiKeyInput.id": "Global id of the key to roll.",
  "SearchHighlight.field": "The part of the message that matched.",
  SendDraftInput: "The input of `sendDraft`.",
  "SendDraftInput.id": "Global id of the draft to send now.",
  SendMessageInput: "The input of `sendMessage`.",
  "SendMessageInput.html": "HTML body (give `text`, `html` or both).",
  "SendMessageInput.text": "Plain-text body (give `text`, `html` or both).",
  SendMessagePayload: "What every send mutation returns: the message as stored.",
  Subscription: "Live events over graphql-ws or SSE, authorized when they start and filtered per event.",
  "Subscription.messageReceived(inboxId)": "Only messages received by this inbox.",
  "Thread.inbox": "The inbox it belongs to.",
  "Thread.labels": "The labels of its visible messages, hidden ones left out.",
  "Thread.lastMessageAt": "When its latest visible message arrived or was sent.",
  "Thread.messageCount": "How many of its messages the caller can see.",
  "Thread.preview": "The start of its latest visible message's text.",
  "Thread.recipients": "Every recipient address of its visible messages.",
  "Thread.senders": "Every sender address of its visible messages.",
  "Thread.subject": "Subject of its first message; null for none.",
  UpdateApiKeyInput:
    "The input of `updateApiKey`: what is omitted stays as it is; nothing can widen the key.",
  "UpdateApiKeyInput.id": "Global id of the key to change.",
  "UpdateApiKeyInput.name": "A new label.",
  UpdateApiKeyPayload: "What `updateApiKey` returns.",
  "UpdateApiKeyPayload.apiKey": "The key as changed.",
  "UpdateDraftInput.html": "New HTML body.",
  "UpdateDraftInput.id": "Global id of the draft to change.",
  "UpdateDraftInput.text": "New plain-text body.",
  UpdateInboxInput: "The input of `updateInbox`: what is omitted stays as it is.",
  "UpdateInboxInput.id": "Global id of the inbox to change.",
  UpdateInboxPayload: "What `updateInbox` returns.",
  "UpdateInboxPayload.inbox": "The inbox as changed.",
  UpdateMessageInput: "The input of `updateMessage`.",
  "UpdateMessageInput.addLabels": "Labels to add (system labels cannot be set by hand).",
  "UpdateMessageInput.id": "Global id of the message.",
  UpdateMessagePayload: "What `updateMessage` returns.",
  "UpdateMessagePayload.message": "The message as changed.",
  UpdateMessagesInput: "The input of `updateMessages`: all or nothing.",
  "UpdateMessagesInput.addLabels": "Labels to add to every message.",
  UpdateMessagesPayload: "What `updateMessages` returns.",
  UpdateThreadInput: "The input of `updateThread`.",
  "UpdateThreadInput.addLabels": "Labels to add to every visible message of the thread.",
  "UpdateThreadInput.id": "Global id of the thread.",
  UpdateThreadPayload: "What `updateThread` returns.",
  "UpdateThreadPayload.thread": "The thread as changed.",
  UpdateWebhookInput: "The input of `updateWebhook`: what is omitted stays as it is.",
  "UpdateWebhookInput.enabled": "False pauses deliveries; true resumes them.",
  "UpdateWebhookInput.eventTypes": "The events to deliver (at least one).",
  "UpdateWebhookInput.id": "Global id of the webhook.",
  "UpdateWebhookInput.url": "The new https URL to deliver to.",
  UpdateWebhookPayload: "What `updateWebhook` returns.",
  "UpdateWebhookPayload.webhook": "The webhook as changed.",
  "User.createdAt": "When the account was created.",
  "User.email": "The address the person signs in with.",
  "User.id": "Global id of the person (not loadable with `node(id:)`: people are reached through `viewer`).",
  "User.role": "ADMIN or MEMBER.",
  VerifyDomainInput: "The input of `verifyDomain`.",
  "VerifyDomainInput.id": "Global id of the domain to check now.",
  "Viewer.inbox": "The inbox an INBOX-scoped caller is bound to; null otherwise.",
  "Viewer.organization": "The caller's organization.",
  "Viewer.permissions": "The caller's effective permissions: scope ceiling ∩ key whitelist ∩ other ceilings.",
  "Viewer.pod": "The pod a POD- or INBOX-scoped caller is bound to; null otherwise.",
  "Viewer.scope": "How far the caller reaches.",
  "Webhook.createdAt": "When it was registered.",
  "Webhook.eventTypes": "The events it receives.",
  "Webhook.updatedAt": "When it last changed.",
  "Webhook.url": "Where deliveries are POSTed.",
  "WebhookDelivery.attempts": "How many POSTs were made so far.",
  "WebhookDelivery.createdAt": "When the delivery was queued.",
  "WebhookDelivery.deliveredAt": "When an attempt succeeded; null until then.",
  "WebhookDelivery.eventType": "The type of the event delivered.",
  "WebhookDelivery.id": "Global id of the delivery.",
  "WebhookDelivery.lastError": "Why the last attempt failed (status or network error); null after success.",
  "WebhookDelivery.lastStatusCode": "The HTTP status of the last attempt; null when it got no answer.",
  "WebhookDelivery.nextAttemptAt": "When the next retry is due; null when none is.",
  "WebhookDelivery.status": "PENDING, SUCCEEDED or FAILED (retries exhausted).",
  WebhookDeliveryConnection: "A page of a webhook's deliveries, newest first.",
  WebhookDeliveryEdge: "One delivery in a page, with its cursor.",
  WebhookDeliveryStatus: "Where a delivery stands.",
  "WebhookDeliveryStatus.FAILED": "Every retry failed; no more attempts.",
  "WebhookDeliveryStatus.PENDING": "Not yet delivered; retries continue.",
  "WebhookDeliveryStatus.SUCCEEDED": "A 2xx answer was received.",
};

type Describable = { description?: string | null | undefined; astNode?: unknown };

/** Every mutation takes one `input` argument; its description names the input type that documents it. */
function inputArgumentDescription(mutation: string, inputType: string): string {
  return `What \`${mutation}\` needs: see ${inputType}.`;
}

/** Gives every element without a description the one DESCRIPTIONS holds for it. */
export function describeSchema(schema: GraphQLSchema): GraphQLSchema {
  const unused = new Set(Object.keys(DESCRIPTIONS));
  const describe = (coordinate: string, element: Describable, fallback?: string) => {
    const text = DESCRIPTIONS[coordinate] ?? fallback;
    unused.delete(coordinate);
    if (text === undefined || element.description) return;
    element.description = text;
    // SDL printers read the description of an AST node when the element has one.
    if (element.astNode && typeof element.astNode === "object") {
      element.astNode = { ...element.astNode, description: { kind: Kind.STRING, value: text } };
    }
  };
  const mutationType = schema.getMutationType();
  for (const type of Object.values(schema.getTypeMap())) {
    if (type.name.startsWith("__")) continue;
    describe(type.name, type);
    if (isObjectType(type) || isInterfaceType(type)) {
      for (const field of Object.values(type.getFields())) {
        describe(`${type.name}.${field.name}`, field);
        for (const arg of field.args) {
          const fallback =
            type === mutationType && arg.name === "input"
              ? inputArgumentDescription(field.name, String(arg.type).replace(/!$/, ""))
              : undefined;
          describe(`${type.name}.${field.name}(${arg.name})`, arg, fallback);
        }
      }
    } else if (isInputObjectType(type)) {
      for (const field of Object.values(type.getFields())) describe(`${type.name}.${field.name}`, field);
    } else if (isEnumType(type)) {
      for (const value of type.getValues()) describe(`${type.name}.${value.name}`, value);
    }
  }
  if (unused.size > 0) {
    throw new Error(`Descriptions for elements the schema does not have: ${[...unused].join(", ")}`);
  }
  return schema;
}
