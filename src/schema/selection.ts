// What a field's selection reads below a path (e.g. a connection's edges.node), so a list can skip
// the aggregates nobody asked for. Fragments and inline fragments count whatever their type
// condition or @include/@skip: reading too much is safe, too little is not.
import { type FieldNode, type GraphQLResolveInfo, Kind, type SelectionSetNode } from "graphql";

/**
 * A list of 50 threads asks 50 times. A field met as one node is decided by that node of a (cached,
 * parsed) document, so it keys across requests. A field merged from several nodes keys by their array
 * (the executor hands the same one to every item of a list): its first node alone may be a fragment's,
 * met elsewhere without the others, and would answer with that smaller selection.
 */
const memo = new WeakMap<FieldNode | readonly FieldNode[], Map<string, ReadonlySet<string>>>();

export function selectedFieldNames(info: GraphQLResolveInfo, path: readonly string[]): ReadonlySet<string> {
  const { fieldNodes } = info;
  const owner = fieldNodes.length === 1 ? fieldNodes[0] : fieldNodes;
  if (!owner) return new Set();
  let byPath = memo.get(owner);
  if (!byPath) {
    byPath = new Map();
    memo.set(owner, byPath);
  }
  const key = path.join(".");
  let names = byPath.get(key);
  if (!names) {
    names = collect(info, path);
    byPath.set(key, names);
  }
  return names;
}

function collect(info: GraphQLResolveInfo, path: readonly string[]): Set<string> {
  let sets: SelectionSetNode[] = info.fieldNodes.flatMap((node) =>
    node.selectionSet ? [node.selectionSet] : [],
  );
  for (const name of path) {
    sets = fieldsOf(info, sets).flatMap((field) =>
      field.name.value === name && field.selectionSet ? [field.selectionSet] : [],
    );
  }
  return new Set(fieldsOf(info, sets).map((field) => field.name.value));
}

function fieldsOf(
  info: GraphQLResolveInfo,
  sets: readonly SelectionSetNode[],
  seen = new Set<string>(),
): FieldNode[] {
  const fields: FieldNode[] = [];
  for (const set of sets) {
    for (const selection of set.selections) {
      if (selection.kind === Kind.FIELD) fields.push(selection);
      else if (selection.kind === Kind.INLINE_FRAGMENT)
        fields.push(...fieldsOf(info, [selection.selectionSet], seen));
      else if (!seen.has(selection.name.value)) {
        seen.add(selection.name.value);
        const fragment = info.fragments[selection.name.value];
        if (fragment) fields.push(...fieldsOf(info, [fragment.selectionSet], seen));
      }
    }
  }
  return fields;
}
