/* eslint-disable */
import * as types from './graphql';



/**
 * Map of all GraphQL operations in the project.
 *
 * This map has several performance disadvantages:
 * 1. It is not tree-shakeable, so it will include all operations in the project.
 * 2. It is not minifiable, so the string of a GraphQL query will be multiple times inside the bundle.
 * 3. It does not support dead code elimination, so it will add unused operations.
 *
 * Therefore it is highly recommended to use the babel or swc plugin for production.
 * Learn more about it here: https://the-guild.dev/graphql/codegen/plugins/presets/preset-client#reducing-bundle-size
 */
type Documents = {
    "\n  query AgentInbox($email: String!) {\n    inbox(email: $email) {\n      id\n      email\n    }\n  }\n": typeof types.AgentInboxDocument,
    "\n  subscription AgentMessageReceived($inboxId: ID!) {\n    messageReceived(inboxId: $inboxId) {\n      id\n      from\n      subject\n      headers {\n        name\n        value\n      }\n    }\n  }\n": typeof types.AgentMessageReceivedDocument,
    "\n  mutation AgentReply($input: ReplyToMessageInput!) {\n    replyToMessage(input: $input) {\n      message {\n        id\n        to\n        subject\n      }\n    }\n  }\n": typeof types.AgentReplyDocument,
};
const documents: Documents = {
    "\n  query AgentInbox($email: String!) {\n    inbox(email: $email) {\n      id\n      email\n    }\n  }\n": types.AgentInboxDocument,
    "\n  subscription AgentMessageReceived($inboxId: ID!) {\n    messageReceived(inboxId: $inboxId) {\n      id\n      from\n      subject\n      headers {\n        name\n        value\n      }\n    }\n  }\n": types.AgentMessageReceivedDocument,
    "\n  mutation AgentReply($input: ReplyToMessageInput!) {\n    replyToMessage(input: $input) {\n      message {\n        id\n        to\n        subject\n      }\n    }\n  }\n": types.AgentReplyDocument,
};

/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query AgentInbox($email: String!) {\n    inbox(email: $email) {\n      id\n      email\n    }\n  }\n"): typeof import('./graphql').AgentInboxDocument;
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  subscription AgentMessageReceived($inboxId: ID!) {\n    messageReceived(inboxId: $inboxId) {\n      id\n      from\n      subject\n      headers {\n        name\n        value\n      }\n    }\n  }\n"): typeof import('./graphql').AgentMessageReceivedDocument;
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation AgentReply($input: ReplyToMessageInput!) {\n    replyToMessage(input: $input) {\n      message {\n        id\n        to\n        subject\n      }\n    }\n  }\n"): typeof import('./graphql').AgentReplyDocument;


export function graphql(source: string) {
  return (documents as any)[source] ?? {};
}
