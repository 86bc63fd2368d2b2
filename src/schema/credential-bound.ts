// Fields whose value depends on which credential asks, not only on what it can see: a download link
// names the key (or session) that minted it, so that deleting the key ends the link. Subscribers with
// equal visibility share one execution of each event (shared-results.ts), which would hand every one of
// them the first subscriber's link; an operation that selects such a field runs for each subscriber
// alone instead.
import { BREAK, type DocumentNode, type GraphQLSchema, TypeInfo, visit, visitWithTypeInfo } from "graphql";

/** Spread into a field's options: marks it as bound to the calling credential. */
export const credentialBound = { extensions: { credentialBound: true } } as const;

// Per document (yoga's parser cache hands the same text the same object): a subscription asks once.
const selects = new WeakMap<DocumentNode, boolean>();

/** Whether the document selects a credential-bound field anywhere (any operation or fragment). */
export function selectsCredentialBoundField(schema: GraphQLSchema, document: DocumentNode): boolean {
  let found = selects.get(document);
  if (found === undefined) {
    found = false;
    const typeInfo = new TypeInfo(schema);
    visit(
      document,
      visitWithTypeInfo(typeInfo, {
        Field() {
          if (typeInfo.getFieldDef()?.extensions?.credentialBound) {
            found = true;
            return BREAK;
          }
          return undefined;
        },
      }),
    );
    selects.set(document, found);
  }
  return found;
}
