// Download links as GraphQL fields (`Message.rawUrl`, `Attachment.downloadUrl`): minted for the caller
// on the spot, without reading or writing anything (src/files/service.ts). No permission of their own:
// reaching the message already took MESSAGE_READ and the label visibility the link keeps.
import { GraphQLError } from "graphql";
import { type FileTarget, mintDownloadUrl } from "../files/service.ts";
import type { Context } from "./context.ts";
import { credentialBound } from "./credential-bound.ts";

/** What every link's description says of how long it works and what ends it. */
const LINK_RULES =
  "Absolute, and works without any header for whoever holds it (treat it as a secret) for " +
  "FILE_URL_TTL_SECONDS (an hour by default) after it was read. It answers HTTP 404 from then on, and " +
  "as soon as the message is deleted or hidden by a label from the caller that got the link, or that " +
  "caller's key (or session) is deleted or expires. Ask again for a fresh link.";

/** The options of a download-link field: the link to `target(parent)`, for the calling credential. */
export function downloadLinkField<Parent>(what: string, target: (parent: Parent) => FileTarget) {
  return {
    description: `A link to download ${what}. ${LINK_RULES}`,
    ...credentialBound,
    resolve: (parent: Parent, _args: unknown, context: Context): string => {
      const { principal, baseUrl } = context;
      // Guarded parents are reached by authenticated callers only.
      if (principal.kind === "anonymous") throw new Error("a download link for an anonymous caller");
      if (baseUrl === undefined) {
        throw new GraphQLError(
          "No link can be made: the request's Host header is not a host name, and PUBLIC_URL is not set.",
          { extensions: { code: "BAD_REQUEST" } },
        );
      }
      return mintDownloadUrl(context.services, principal, baseUrl, target(parent));
    },
  } as const;
}
