/* eslint-disable */
/** Internal type. DO NOT USE DIRECTLY. */
type Exact<T extends { [key: string]: unknown }> = { [K in keyof T]: T[K] };
/** Internal type. DO NOT USE DIRECTLY. */
export type Incremental<T> = T | { [P in keyof T]?: P extends ' $fragmentName' | '__typename' ? T[P] : never };
import type { DocumentTypeDecoration } from '@graphql-typed-document-node/core';
/** A file to attach when sending, replying or drafting. */
export type AttachmentInput = {
  /** The file's bytes, base64-encoded. */
  contentBase64: string;
  /** A MIME type; unset: guessed from the filename. */
  contentType?: string | null | undefined;
  /** The file name recipients see. */
  filename: string;
};

/** The input of `replyToMessage`. */
export type ReplyToMessageInput = {
  /** Files to attach. */
  attachments?: Array<AttachmentInput> | null | undefined;
  /** HTML body of the reply. */
  html?: string | null | undefined;
  /** Sends at most once: within 24 hours, a repeat with this key and the same input returns the first call's message and sends nothing; with another input it fails IDEMPOTENCY_CONFLICT. 1–255 printable characters. The HTTP header Idempotency-Key means the same. */
  idempotencyKey?: string | null | undefined;
  /** Labels for the sent copy, besides `sent`. */
  labels?: Array<string> | null | undefined;
  /** Global id of the message to reply to. */
  messageId: string | number;
  /** Also to the original's other To and Cc recipients (never to the replying inbox itself). */
  replyAll?: boolean | null | undefined;
  /** Plain-text body of the reply. */
  text?: string | null | undefined;
};

export type AgentInboxQueryVariables = Exact<{
  email: string;
}>;


export type AgentInboxQuery = { inbox: { id: string, email: string } | null };

export type AgentMessageReceivedSubscriptionVariables = Exact<{
  inboxId: string | number;
}>;


export type AgentMessageReceivedSubscription = { messageReceived: { id: string, from: string, subject: string | null, headers: Array<{ name: string, value: string }> } };

export type AgentReplyMutationVariables = Exact<{
  input: ReplyToMessageInput;
}>;


export type AgentReplyMutation = { replyToMessage: { message: { id: string, to: Array<string>, subject: string | null } } | null };

export class TypedDocumentString<TResult, TVariables>
  extends String
  implements DocumentTypeDecoration<TResult, TVariables>
{
  __apiType?: NonNullable<DocumentTypeDecoration<TResult, TVariables>['__apiType']>;
  private value: string;
  public __meta__?: Record<string, any> | undefined;

  constructor(value: string, __meta__?: Record<string, any> | undefined) {
    super(value);
    this.value = value;
    this.__meta__ = __meta__;
  }

  override toString(): string & DocumentTypeDecoration<TResult, TVariables> {
    return this.value;
  }
}

export const AgentInboxDocument = new TypedDocumentString(`
    query AgentInbox($email: String!) {
  inbox(email: $email) {
    id
    email
  }
}
    `) as unknown as TypedDocumentString<AgentInboxQuery, AgentInboxQueryVariables>;
export const AgentMessageReceivedDocument = new TypedDocumentString(`
    subscription AgentMessageReceived($inboxId: ID!) {
  messageReceived(inboxId: $inboxId) {
    id
    from
    subject
    headers {
      name
      value
    }
  }
}
    `) as unknown as TypedDocumentString<AgentMessageReceivedSubscription, AgentMessageReceivedSubscriptionVariables>;
export const AgentReplyDocument = new TypedDocumentString(`
    mutation AgentReply($input: ReplyToMessageInput!) {
  replyToMessage(input: $input) {
    message {
      id
      to
      subject
    }
  }
}
    `) as unknown as TypedDocumentString<AgentReplyMutation, AgentReplyMutationVariables>;