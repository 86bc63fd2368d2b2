// Lints the printed schema (schema.graphql) with @graphql-eslint's schema rules: every element
// described, Relay connections well formed, names consistent (docs/schema.md, "Schema lint").
// TypeScript is linted by Biome, not here.
import graphqlPlugin from "@graphql-eslint/eslint-plugin";

// biome-ignore lint/style/noDefaultExport: ESLint reads its flat config from the default export.
export default [
  {
    files: ["schema.graphql"],
    languageOptions: {
      parser: graphqlPlugin.parser,
      parserOptions: { graphQLConfig: { schema: "schema.graphql" } },
    },
    plugins: { "@graphql-eslint": graphqlPlugin },
    rules: {
      ...graphqlPlugin.configs["flat/schema-recommended"].rules,
      ...graphqlPlugin.configs["flat/schema-relay"].rules,
      // Contract names (Domain.domain, Message.messageId) start with their type's name; clients depend on
      // them, so they stay and this rule is off.
      "@graphql-eslint/no-typename-prefix": "off",
      // Lists of plain values (labels, addresses, headers) are fine; connections are still checked.
      "@graphql-eslint/relay-edge-types": [
        "error",
        { withEdgeSuffix: true, shouldImplementNode: true, listTypeCanWrapOnlyEdgeType: false },
      ],
      // Backward paging (last/before) is offered only where it is cheap; forward paging is everywhere.
      "@graphql-eslint/relay-arguments": ["error", { includeBoth: false }],
      // Every entity has `id: ID!`; connections, edges, payloads and value objects have no identity.
      "@graphql-eslint/strict-id-in-types": [
        "error",
        {
          acceptedIdNames: ["id"],
          acceptedIdTypes: ["ID"],
          exceptions: {
            suffixes: ["Connection", "Edge", "Payload", "Report"],
            types: [
              "AccessDenial",
              "ApiKeyPermissions",
              "AuthCheck",
              "DnsRecord",
              "EmailAddress",
              "MessageAuthentication",
              "MessageHeader",
              "MetricCount",
              "PageInfo",
              "SearchHighlight",
              "Viewer",
            ],
          },
        },
      ],
      "@graphql-eslint/require-description": [
        "error",
        {
          types: true,
          rootField: true,
          DirectiveDefinition: true,
          FieldDefinition: true,
          InputValueDefinition: true,
          EnumValueDefinition: true,
          ScalarTypeDefinition: true,
          ObjectTypeDefinition: true,
          InterfaceTypeDefinition: true,
          UnionTypeDefinition: true,
          EnumTypeDefinition: true,
          InputObjectTypeDefinition: true,
          OperationDefinition: false,
        },
      ],
    },
  },
];
